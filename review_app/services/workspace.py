"""The workspace as a whole: opening it from the settings (a store of its own for a command, one
shared store per process for the web app), and the counts its overview shows."""

from __future__ import annotations

import threading
from pathlib import Path

from review_app.errors import NotFound
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "close_shared_stores",
    "open_existing_store",
    "open_store",
    "shared_store",
    "workspace_summary",
]

# Workspace file -> the store every session of this process shares.
_SHARED: dict[str, Store] = {}
_SHARED_LOCK = threading.Lock()


def open_store(settings: Settings | None = None) -> Store:
    """A store of the caller's own, to close when done (one command, one script)."""
    """The workspace of the settings, created (and migrated) when it does not exist yet."""
    settings = settings or Settings.from_env()
    return Store.open(settings.db, signing_key=settings.signing_key)


def shared_store(settings: Settings | None = None) -> Store:
    """The workspace's one store in this process, opened on first use and shared by every
    session and page run of the web app (a store is thread-safe). Nothing per run: a store
    opened per page run would outlive it, since Streamlit keeps old runs alive."""
    settings = settings or Settings.from_env()
    path = settings.db_location()
    with _SHARED_LOCK:
        store = _SHARED.get(path)
        if store is None:
            store = _SHARED[path] = Store.open(path, signing_key=settings.signing_key)
            store.open_readers()
        return store


def close_shared_stores() -> None:
    """Close every shared store (between the workspaces of a test run)."""
    with _SHARED_LOCK:
        for store in _SHARED.values():
            store.close()
        _SHARED.clear()


def open_existing_store(settings: Settings) -> Store:
    """The workspace of the settings; NotFound, creating nothing, when there is none."""
    path = settings.db
    if not settings.db_is_server and path != ":memory:" and not Path(path).is_file():
        raise NotFound(
            f"no workspace at {path}: point --db or REVIEW_APP_DB at one, or start one with "
            "`review-app import outputs` or `review-app demo`"
        )
    return Store.open(path, signing_key=settings.signing_key)


def workspace_summary(store: Store) -> dict:
    """Counts a home page or `review-app info` shows."""
    studies = []
    for study in store.studies.studies(archived=False):
        counts = store.studies.study_counts(study["id"])
        comparisons = store.studies.comparisons(study["id"])
        studies.append(
            {
                "name": study["name"],
                "eval_set": study["eval_set"],
                "comparisons": [f"{a} vs {b}" for a, b in comparisons],
                "candidate": study["candidate"],
                "reviews_per_pair": study["reviews_per_pair"],
                **counts,
                # Of the votes, those reviewers cast in the app (the rest were imported).
                "app_votes": store.studies.app_votes(study["id"]),
            }
        )
    return {
        "eval_sets": [
            {"name": e["name"], "items": e["n_items"], "frozen": bool(e["frozen_at"])}
            for e in store.catalog.eval_sets()
        ],
        "systems": store.catalog.system_names(),
        "studies": studies,
    }
