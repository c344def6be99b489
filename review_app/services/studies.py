"""Studies: creating one over an eval set (its pairs, the frozen eval set), its reviewer
guidelines (versioned by content hash), and reading its comparisons, candidate and categories."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from review_app import stats
from review_app.errors import Conflict, InputError, NotFound
from review_app.store import Store


@dataclass(frozen=True)
class StudySummary:
    name: str
    eval_set: str
    pairs_added: int
    skipped_items: dict[str, int]
    eval_set_hash: str


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
    guidelines: str | None = None,
    created_by: str = "",
) -> StudySummary:
    """Create a study and its pairs (one per item and comparison, canonical order), freezing the
    eval set, with the reviewer guidelines when given. Items missing an output from either system
    are skipped and counted."""
    comparisons = list(comparisons)
    name = name.strip()
    if not name:
        raise InputError("the study needs a name")
    if reviews_per_pair < 1:
        raise InputError(f"reviews per pair must be at least 1, got {reviews_per_pair}")
    if guidelines is not None:
        guidelines = _checked_guidelines(guidelines)
    with store.transaction():
        if store.study(name) is not None:
            raise Conflict(f"a study named {name!r} already exists")
        es = store.require_eval_set(eval_set)
        known = set(store.system_names())
        for a, b in comparisons:
            for system in (a, b):
                if system not in known:
                    raise NotFound(
                        f"comparison {a}:{b}: no system named {system!r} "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
        study_id = store.insert_study(name, es["id"], reviews_per_pair, show_reference, criteria)
        skipped: dict[str, int] = {}
        added = 0
        all_items = set(store.item_ids_by_key(es["id"]).values())
        for a, b in comparisons:
            store.add_comparison(study_id, a, b)
            having = store.items_with_outputs(es["id"], [a, b])
            both = having[a] & having[b]
            skipped[f"{a}:{b}"] = len(all_items - both)
            x, y = sorted((a, b))
            added += store.insert_pairs(study_id, [(item_id, x, y) for item_id in sorted(both)])
        content_hash = store.freeze_eval_set(es["id"])
        if guidelines is not None:
            store.insert_guidelines(study_id, guidelines_hash(guidelines), guidelines, created_by)
    return StudySummary(name, eval_set, added, skipped, content_hash)


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


def set_guidelines(store: Store, study: str, text: str, by: str = "") -> tuple[str, bool]:
    """Put new guidelines in force for a study; returns their hash and whether they changed
    (setting the text already in force records nothing). Votes cast from now on carry the hash."""
    text = _checked_guidelines(text)
    digest = guidelines_hash(text)
    with store.transaction():
        study_id = store.require_study(study)["id"]
        current = store.current_guidelines(study_id)
        if current is not None and current["content_hash"] == digest:
            return digest, False
        store.insert_guidelines(study_id, digest, text, by)
    return digest, True


def study_guidelines(store: Store, study: str) -> dict | None:
    """The guidelines in force for a study (content_hash, body, set_by, created_at), or None."""
    return store.current_guidelines(store.require_study(study)["id"])


def guidelines_history(store: Store, study: str) -> list[dict]:
    """Every version of a study's guidelines, oldest first, with the votes cast under each."""
    return store.guidelines_history(store.require_study(study)["id"])


def study_comparisons(store: Store, study: str) -> list[tuple[str, str]]:
    """The study's comparisons as (system_a, system_b), in the order they were declared."""
    return store.comparisons(store.require_study(study)["id"])


def list_studies(store: Store) -> list[dict]:
    return store.studies()


def study_items(store: Store, study: str) -> list[str]:
    """The item ids the study's pairs are built on, sorted."""
    pairs = store.pairs_frame(store.require_study(study)["id"], texts=False)
    return sorted(set(pairs["item_key"]))


def study_categories(store: Store, study: str) -> list[str]:
    """The study's categories, named as the statistics name them."""
    pairs = store.pairs_frame(store.require_study(study)["id"], texts=False)
    return sorted(set(stats.category_names(pairs["category"])))
