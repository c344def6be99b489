"""The workspace as a whole: opening it from the settings, and the counts its overview shows."""

from __future__ import annotations

from review_app.settings import Settings
from review_app.store import Store


def open_store(settings: Settings | None = None) -> Store:
    settings = settings or Settings.from_env()
    return Store.open(settings.db_path)


def workspace_summary(store: Store) -> dict:
    """Counts a home page or `review-app info` shows."""
    studies = []
    for study in store.studies():
        counts = store.study_counts(study["id"])
        comparisons = store.comparisons(study["id"])
        studies.append(
            {
                "name": study["name"],
                "eval_set": study["eval_set"],
                "comparisons": [f"{a} vs {b}" for a, b in comparisons],
                "candidate": study["candidate"],
                "reviews_per_pair": study["reviews_per_pair"],
                **counts,
            }
        )
    return {
        "eval_sets": [
            {"name": e["name"], "items": e["n_items"], "frozen": bool(e["frozen_at"])}
            for e in store.eval_sets()
        ],
        "systems": store.system_names(),
        "studies": studies,
    }
