"""Studies: creating one over an eval set (its pairs, the frozen eval set), and reading its
comparisons, candidate and categories."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from review_app import stats
from review_app.errors import Conflict, InputError, NotFound
from review_app.store import Store, import_lock, locked_what


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
) -> StudySummary:
    """Create a study and its pairs (one per item and comparison, canonical order), freezing the
    eval set. Items missing an output from either system are skipped and counted. Refused while
    an import writes into the eval set or a study of that name."""
    with store.transaction():
        holder = store.import_lock_holder(
            [import_lock("study", name), import_lock("eval_set", eval_set)]
        )
        if holder is not None:
            raise Conflict(
                f"{holder['file']} is being imported into {locked_what(holder['lock_name'])}; "
                "create the study once that import has finished"
            )
        return _create_study(
            store, name, eval_set, comparisons, reviews_per_pair, show_reference, criteria
        )


def create_study_for_import(store: Store, name: str, eval_set: str) -> StudySummary:
    """The study an import of votes or verdicts creates over `eval_set`, without comparisons
    (the import adds those it needs). The import holds the locks `create_study` respects."""
    return _create_study(store, name, eval_set, [])


def _create_study(
    store: Store,
    name: str,
    eval_set: str,
    comparisons: Iterable[tuple[str, str]],
    reviews_per_pair: int = 3,
    show_reference: bool = False,
    criteria: list[str] | None = None,
) -> StudySummary:
    comparisons = list(comparisons)
    if reviews_per_pair < 1:
        raise InputError(f"reviews per pair must be at least 1, got {reviews_per_pair}")
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
    return StudySummary(name, eval_set, added, skipped, content_hash)


def study_comparisons(store: Store, study: str) -> list[tuple[str, str]]:
    """The study's comparisons as (system_a, system_b), in the order they were declared."""
    return store.comparisons(store.require_study(study)["id"])


def list_studies(store: Store) -> list[dict]:
    return store.studies()


def study_categories(store: Store, study: str) -> list[str]:
    """The study's categories, named as the statistics name them."""
    pairs = store.pairs_frame(store.require_study(study)["id"], texts=False)
    return sorted(set(stats.category_names(pairs["category"])))
