"""The workspace: one SQLite file (WAL) through sqlite-utils. This package is the only code that
knows SQL or table names; everything else asks `Store` for rows, frames and atomic changes."""

from __future__ import annotations

from review_app.store.audit import AuditQueries
from review_app.store.base import StoreBase, now_iso
from review_app.store.batches import JudgeBatchQueries
from review_app.store.calibration import CalibrationQueries
from review_app.store.catalog import CatalogQueries, item_fingerprint, text_digest
from review_app.store.frames import FrameQueries
from review_app.store.gate import GateQueries
from review_app.store.grading import GradingQueries
from review_app.store.imports import ImportQueries, import_lock, locked_what
from review_app.store.judging import JudgingQueries
from review_app.store.people import ReviewerQueries
from review_app.store.quality import QualityQueries
from review_app.store.review import AssignmentState, ReviewQueries
from review_app.store.studies import StudyQueries

__all__ = [
    "AssignmentState",
    "Store",
    "import_lock",
    "item_fingerprint",
    "locked_what",
    "now_iso",
    "text_digest",
]


class Store(
    CatalogQueries,
    StudyQueries,
    ReviewerQueries,
    ReviewQueries,
    JudgingQueries,
    JudgeBatchQueries,
    CalibrationQueries,
    GateQueries,
    GradingQueries,
    QualityQueries,
    FrameQueries,
    AuditQueries,
    ImportQueries,
    StoreBase,
):
    """A migrated workspace, its queries grouped by aggregate (one module each). Safe to share
    between threads: writes serialize on a lock and run in BEGIN IMMEDIATE transactions."""
