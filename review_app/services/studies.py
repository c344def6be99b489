"""Studies: creating one over an eval set (its pairs, the frozen eval set), naming its candidate,
its reviewer guidelines (versioned by content hash), and reading its comparisons and categories."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from review_app import auth, stats
from review_app.auth import Actor
from review_app.errors import Conflict, InputError, NotFound
from review_app.names import checked_name
from review_app.services import audit, plans
from review_app.services.context import Lock, StudyContext
from review_app.store import Store, import_lock, locked_what

__all__ = [
    "ArchivedStudy",
    "MAX_GUIDELINES_CHARS",
    "StudySummary",
    "archive_study",
    "create_study",
    "create_study_for_import",
    "eval_set_systems",
    "guidelines_hash",
    "guidelines_history",
    "infer_candidate",
    "list_studies",
    "name_candidate",
    "parse_comparison",
    "read_guidelines_file",
    "set_candidate",
    "set_guidelines",
    "study_categories",
    "study_comparisons",
    "study_guidelines",
    "study_items",
]


@dataclass(frozen=True)
class StudySummary:
    name: str
    eval_set: str
    pairs_added: int
    skipped_items: dict[str, int]
    eval_set_hash: str
    candidate: str | None = None
    # Pairs reviewers see (all of them unless the study has a human share).
    human_pairs: int | None = None


def parse_comparison(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError(f"comparison {text!r}: expected SYSTEM:SYSTEM, e.g. finetuned:base")
    a, b = (p.strip() for p in parts)
    if a == b:
        raise InputError(f"comparison {text!r}: a system cannot be compared with itself")
    return a, b


def create_study(
    store: Store,
    name: str,
    eval_set: str,
    comparisons: Iterable[tuple[str, str]],
    reviews_per_pair: int = 3,
    show_reference: bool = False,
    criteria: list[str] | None = None,
    candidate: str | None = None,
    *,
    actor: Actor,
    guidelines: str | None = None,
    human_share: float | None = None,
) -> StudySummary:
    """Create a study and its pairs (one per item and comparison, canonical order), freezing the
    eval set; with `human_share` < 1 reviewers see only that seeded share of each comparison's
    items (`plans.set_human_share`). Items missing an output from either system are skipped and counted. The candidate
    (the system the gate decides on) defaults to the first system of the first comparison, as
    given, never by name order. Refused while an import writes into the eval set or a study of
    that name."""
    auth.require(actor, "create a study")
    with store.transaction():
        holder = store.imports.import_lock_holder(
            [import_lock("study", name), import_lock("eval_set", eval_set)]
        )
        if holder is not None:
            raise Conflict(
                f"{holder['file']} is being imported into {locked_what(holder['lock_name'])}; "
                "create the study once that import has finished"
            )
        return _create_study(
            store,
            name,
            eval_set,
            comparisons,
            reviews_per_pair,
            show_reference,
            criteria,
            candidate,
            by=actor.name,
            guidelines=guidelines,
            human_share=human_share,
        )


def create_study_for_import(store: Store, name: str, eval_set: str, actor: Actor) -> StudySummary:
    """The study an import of votes or verdicts creates over `eval_set`, without comparisons
    (the import adds those it needs, and names the candidate). The import holds the locks
    `create_study` respects; its importer created it."""
    auth.require(actor, "create a study")
    return _create_study(store, name, eval_set, [], by=actor.name)


def _create_study(
    store: Store,
    name: str,
    eval_set: str,
    comparisons: Iterable[tuple[str, str]],
    reviews_per_pair: int = 3,
    show_reference: bool = False,
    criteria: list[str] | None = None,
    candidate: str | None = None,
    *,
    by: str,
    guidelines: str | None = None,
    human_share: float | None = None,
) -> StudySummary:
    comparisons = list(comparisons)
    if human_share is not None and not 0 < human_share <= 1:
        raise InputError(f"the human share must be in (0, 1], got {human_share:g}")
    name = checked_name(name, "study name")
    if candidate is None and comparisons:
        candidate = comparisons[0][0]
    if candidate is not None:
        _require_compared(candidate, comparisons)
    plans.check_reviews_per_pair(reviews_per_pair)
    if guidelines is not None:
        guidelines = _checked_guidelines(guidelines)
    with store.transaction():
        if store.studies.study(name) is not None:
            raise Conflict(f"a study named {name!r} already exists")
        es = store.catalog.require_eval_set(eval_set)
        known = set(store.catalog.system_names())
        for a, b in comparisons:
            for system in (a, b):
                if system not in known:
                    raise NotFound(
                        f"comparison {a}:{b}: no system named {system!r} "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
        study_id = store.studies.insert_study(
            name, es["id"], reviews_per_pair, show_reference, criteria, candidate=candidate
        )
        skipped: dict[str, int] = {}
        added = 0
        all_items = set(store.catalog.item_ids_by_key(es["id"]).values())
        for a, b in comparisons:
            store.studies.add_comparison(study_id, a, b)
            having = store.catalog.items_with_outputs(es["id"], [a, b])
            both = having[a] & having[b]
            skipped[f"{a}:{b}"] = len(all_items - both)
            x, y = sorted((a, b))
            added += store.studies.insert_pairs(
                study_id, [(item_id, x, y) for item_id in sorted(both)]
            )
        if comparisons and not added:
            raise InputError(_no_pairs(store, es, comparisons))
        content_hash = store.catalog.freeze_eval_set(es["id"])
        if guidelines is not None:
            store.studies.insert_guidelines(study_id, guidelines_hash(guidelines), guidelines, by)
        audit.record(
            store,
            by,
            "study created",
            study_id,
            eval_set=eval_set,
            eval_set_hash=content_hash,
            outputs_hash=store.catalog.outputs_hash(es["id"], {s for c in comparisons for s in c}),
            guidelines_hash=guidelines_hash(guidelines) if guidelines is not None else None,
            comparisons=comparisons,
            candidate=candidate,
            reviews_per_pair=reviews_per_pair,
        )
        human_pairs = added
        if human_share is not None and human_share < 1:
            human_pairs = plans.set_human_share(store, study_id, human_share, by)["human_pairs"]
    return StudySummary(name, eval_set, added, skipped, content_hash, candidate, human_pairs)


# More votes per pair than any review could gather: a plan past it is a typo (1e12), and it
# would make every study interim forever.
def _require_compared(candidate: str, comparisons: Iterable[tuple[str, str]]) -> None:
    compared = {s for c in comparisons for s in c}
    if candidate not in compared:
        raise InputError(
            f"candidate {candidate!r} is in none of the study's comparisons "
            f"({', '.join(sorted(compared)) or 'none yet'})"
        )


def infer_candidate(comparisons: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(candidate, why) for a study whose candidate nobody named: the one system in every
    comparison, else the first system of the first comparison as given."""
    if not comparisons:
        return None
    common = set(comparisons[0]).intersection(*map(set, comparisons[1:]))
    if len(comparisons) > 1 and len(common) == 1:
        return common.pop(), "the one system in every comparison"
    a, b = comparisons[0]
    return a, f"the first system of the first comparison, {a}:{b}"


def set_candidate(ctx: StudyContext, candidate: str) -> None:
    """Name the system the study decides on; fixed once the thresholds are locked."""
    name_candidate(ctx.store, ctx.lock, ctx.require("name the candidate"), candidate)


def name_candidate(store: Store, lock: Lock, actor: Actor, candidate: str) -> None:
    """`set_candidate` for a caller that holds the study's lock and an actor already checked
    (an import naming the candidate it was told)."""
    with store.transaction():
        lock.require_unlocked("its candidate")
        _require_compared(candidate, store.studies.comparisons(lock.study_id))
        store.studies.set_candidate(lock.study_id, candidate)
        lock.change(actor, "", "candidate named", deviates=False, candidate=candidate)


# Guidelines are read on every review page run; a book-length file is a mistake, not guidance.
MAX_GUIDELINES_CHARS = 100_000


def guidelines_hash(text: str) -> str:
    """The version of a guidelines text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _checked_guidelines(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InputError("the guidelines are empty; write what reviewers should judge by")
    if len(text) > MAX_GUIDELINES_CHARS:
        raise InputError(
            f"the guidelines are {len(text):,} characters long; keep them under "
            f"{MAX_GUIDELINES_CHARS:,} (reviewers read them beside every pair)"
        )
    return text + "\n"


def read_guidelines_file(path: str | Path) -> str:
    """The text of a Markdown guidelines file; InputError naming the file when it is unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such guidelines file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None


def set_guidelines(ctx: StudyContext, text: str) -> tuple[str, bool]:
    """Put new guidelines in force for a study; returns their hash and whether they changed
    (setting the text already in force records nothing). Votes cast from now on carry the hash."""
    actor = ctx.require("set the guidelines")
    text = _checked_guidelines(text)
    digest = guidelines_hash(text)
    with ctx.store.transaction():
        current = ctx.store.studies.current_guidelines(ctx.id)
        if current is not None and current["content_hash"] == digest:
            return digest, False
        ctx.store.studies.insert_guidelines(ctx.id, digest, text, actor.name)
        ctx.lock.change(actor, "", "guidelines set", deviates=False, content_hash=digest)
    return digest, True


def study_guidelines(store: Store, study: str) -> dict | None:
    """The guidelines in force for a study (content_hash, body, set_by, created_at), or None."""
    return store.studies.current_guidelines(store.studies.require_study(study)["id"])


def guidelines_history(store: Store, study: str) -> list[dict]:
    """Every version of a study's guidelines, oldest first, with the votes cast under each."""
    return store.studies.guidelines_history(store.studies.require_study(study)["id"])


def study_comparisons(store: Store, study: str) -> list[tuple[str, str]]:
    """The study's comparisons as (system_a, system_b), in the order they were declared."""
    return store.studies.comparisons(store.studies.require_study(study)["id"])


def list_studies(store: Store) -> list[dict]:
    """The studies in use, oldest first (archived ones are hidden)."""
    return store.studies.studies(archived=False)


def study_items(store: Store, study: str) -> list[str]:
    """The item ids the study's pairs are built on, sorted."""
    pairs = store.frames.pairs_frame(store.studies.require_study(study)["id"], texts=False)
    return sorted(set(pairs["item_key"]))


def study_categories(store: Store, study: str) -> list[str]:
    """The study's categories, named as the statistics name them."""
    pairs = store.frames.pairs_frame(store.studies.require_study(study)["id"], texts=False)
    return sorted(set(stats.category_names(pairs["category"])))


def _no_pairs(store: Store, eval_set: dict, comparisons: list[tuple[str, str]]) -> str:
    """Why a study over `eval_set` would have no pair to review, naming each comparison."""
    systems = {s for c in comparisons for s in c}
    having = store.catalog.items_with_outputs(eval_set["id"], systems)
    reasons = []
    for a, b in comparisons:
        missing = [s for s in (a, b) if not having.get(s)]
        if missing:
            reasons.append(f"{a}:{b}: {' and '.join(missing)} has no output in it")
        else:
            reasons.append(f"{a}:{b}: no item has an output from both")
    return (
        f"the study would have 0 pairs to review over eval set {eval_set['name']!r} "
        f"({'; '.join(reasons)}); compare systems that answered the same items"
    )


def eval_set_systems(store: Store, eval_set: str) -> list[str]:
    """The systems with outputs in the eval set: the ones a study over it can compare."""
    return store.catalog.systems_in_eval_set(store.catalog.require_eval_set(eval_set)["id"])


@dataclass(frozen=True)
class ArchivedStudy:
    name: str
    eval_set: str
    # Whether the eval set can change again: nothing was recorded on any study over it.
    unfrozen: bool


def archive_study(ctx: StudyContext) -> ArchivedStudy:
    """Hide a study from every list and picker (its record stays, and `--study NAME` still
    reads it). When no study over its eval set has a vote, a verdict or a lock, the eval set
    is unfrozen: nothing was judged on it, so a corrected upload may replace its outputs."""
    actor = ctx.require("archive a study")
    store = ctx.store
    with store.transaction():
        study = store.studies.study_by_id(ctx.id)
        if study["status"] == "archived":
            raise Conflict(f"study {ctx.name!r} is already archived")
        store.studies.set_status(ctx.id, "archived")
        others = [s for s in store.studies.studies() if s["eval_set_id"] == study["eval_set_id"]]
        unfrozen = all(s["id"] == ctx.id or s["status"] == "archived" for s in others) and not any(
            store.studies.has_record(s["id"]) for s in others
        )
        if unfrozen:
            store.catalog.unfreeze_eval_set(study["eval_set_id"])
        eval_set = next(s["eval_set"] for s in others if s["id"] == ctx.id)
        ctx.lock.change(
            actor, "", "study archived", deviates=False, eval_set=eval_set, unfrozen=unfrozen
        )
    return ArchivedStudy(ctx.name, eval_set, unfrozen)
