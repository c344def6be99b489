"""The workspace: one SQLite file (WAL) through sqlite-utils, or one PostgreSQL database. This package is the only code that
knows SQL or table names; everything else asks `Store` for rows, frames and atomic changes,
through its aggregates: `store.gate.thresholds(study_id)`, `store.review.insert_vote(vote)`..."""

from __future__ import annotations

from review_app.store.audit import AuditQueries
from review_app.store.base import READERS, StoreBase, now_iso
from review_app.store.batches import JudgeBatchQueries
from review_app.store.calibration import CalibrationQueries
from review_app.store.catalog import CatalogQueries, item_fingerprint, text_digest
from review_app.store.connection import Database
from review_app.store.copying import CopyQueries
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


class Store(StoreBase):
    """A migrated workspace: its connections and transactions (`StoreBase`), and its queries
    grouped by aggregate, one attribute per module of this package (`store.catalog`,
    `store.studies`, ..., `store.imports`), all running on this store's connections. Safe to
    share between threads: writes serialize on a lock and run in BEGIN IMMEDIATE transactions."""

    catalog: CatalogQueries
    studies: StudyQueries
    people: ReviewerQueries
    review: ReviewQueries
    judging: JudgingQueries
    batches: JudgeBatchQueries
    calibration: CalibrationQueries
    gate: GateQueries
    grading: GradingQueries
    quality: QualityQueries
    frames: FrameQueries
    audit: AuditQueries
    imports: ImportQueries
    copying: CopyQueries

    def __init__(
        self,
        db: Database,
        path: str,
        readers: int = READERS,
        signing_key: str | None = None,
    ):
        super().__init__(db, path, readers, signing_key)
        self.catalog = CatalogQueries(self)
        self.studies = StudyQueries(self)
        self.people = ReviewerQueries(self)
        self.review = ReviewQueries(self)
        self.judging = JudgingQueries(self)
        self.batches = JudgeBatchQueries(self)
        self.calibration = CalibrationQueries(self)
        self.gate = GateQueries(self)
        self.grading = GradingQueries(self)
        self.quality = QualityQueries(self)
        self.frames = FrameQueries(self)
        self.audit = AuditQueries(self)
        self.imports = ImportQueries(self)
        self.copying = CopyQueries(self)
