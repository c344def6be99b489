"""Grading a study's outputs with a grader file: running every check on every output of the
study's systems, storing one result per (output, check) once, pinning and deviations around the
lock, and the pass-rate summary that the report, the gate and the scorecard read.

Before the lock grading stores results but shows no pass rates (outcomes stay hidden, like win
rates); the lock pins the grader versions in use, and grading with any other version afterwards
needs a reason and is recorded as a deviation. The gate reads the pinned versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from review_app import graders
from review_app.errors import InputError
from review_app.services.context import StudyContext
from review_app.store import Store

__all__ = [
    "DEMO_GRADER",
    "available_graders",
    "check_names",
    "grade",
    "grader_names",
    "grader_summary",
    "graders_in_force",
    "has_results",
    "pinned_graders",
    "results_in_force",
]

GRADERS_DIR = Path(__file__).resolve().parents[2] / "graders"
DEMO_GRADER = GRADERS_DIR / "demo-format.yaml"


@dataclass(frozen=True)
class GraderChoice:
    """A grader file offered to the user; `error` says why it cannot be used."""

    path: Path
    grader: graders.Grader | None
    error: str = ""

    @property
    def title(self) -> str:
        if self.grader is None:
            return f"{self.path.name} (invalid)"
        return f"{self.grader.name} ({len(self.grader.checks)} checks, {self.path.name})"


def available_graders(folder: Path = GRADERS_DIR) -> list[GraderChoice]:
    """The shipped grader files, invalid ones listed with their error."""
    choices = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            choices.append(GraderChoice(path, graders.load_grader(path)))
        except InputError as exc:
            choices.append(GraderChoice(path, None, str(exc)))
    return choices


@dataclass(frozen=True)
class GradeOutcome:
    """What one `grade` did: results computed, how many were new, and whether it was a
    deviation from the lock."""

    study: str
    grader: str
    content_hash: str
    outputs: int
    checks: int
    results: int
    new: int
    deviation: bool

    def line(self) -> str:
        kept = self.results - self.new
        text = (
            f"grader {self.grader} ({self.content_hash[:12]}) on study {self.study}: "
            f"{self.checks} checks on {self.outputs} outputs, {self.results} results "
            f"({self.new} new, {kept} already stored)"
        )
        if self.deviation:
            text += "; recorded as a deviation from the lock"
        return text


def pinned_graders(lock: dict | None) -> list[dict]:
    """The grader versions a lock pinned ({name, content_hash}); empty before the lock."""
    if lock is None or not lock.get("graders"):
        return []
    return json.loads(lock["graders"])


def graders_in_force(ctx: StudyContext) -> list[dict]:
    """Per grader name, the version whose results count: the one the lock pinned, else (no lock,
    or a grader the lock did not know) the latest version graded on the study. Each row is the
    stored grader with `pinned` saying whether the lock pinned it. Empty when the study has no
    grader results. Read once per context."""
    return ctx.memo("graders in force", lambda: _in_force(ctx))


def _in_force(ctx: StudyContext) -> list[dict]:
    versions = ctx.store.grading.study_graders(ctx.id)
    pinned = {g["content_hash"] for g in pinned_graders(ctx.lock.row)}
    chosen: dict[str, dict] = {}
    for g in versions:  # oldest first: a later version replaces an earlier unpinned one
        current = chosen.get(g["name"])
        if current is None or not current["pinned"]:
            chosen[g["name"]] = {**g, "pinned": g["content_hash"] in pinned}
    return sorted(chosen.values(), key=lambda g: g["name"])


def grade(ctx: StudyContext, grader_path: str | Path, reason: str = "") -> GradeOutcome:
    """Run every check of the grader file on every output of every system the study compares
    and store the results; those already stored for this grader version stay as they are.
    After the lock, a grader version the lock did not pin needs a reason and is recorded as a
    deviation. Bad grader files raise InputError naming file, line, check and field."""
    actor = ctx.require("run graders")
    store, study = ctx.store, ctx.name
    grader = graders.load_grader(grader_path)
    outputs = store.grading.grading_outputs(ctx.id)
    if outputs.empty:
        raise InputError(f"study {study!r} has no outputs to grade")
    results = graders.run_checks(grader, outputs)
    if results.empty:
        raise InputError(
            f"{grader_path}: no check of grader {grader.name} applies to any output of study "
            f"{study!r} (see each check's categories and items)"
        )
    what = f"grader {grader.name} version {grader.content_hash[:12]}, which the lock did not pin,"
    locked = False
    with store.transaction():
        pinned = {g["content_hash"]: g["name"] for g in pinned_graders(ctx.lock.row)}
        off_plan = grader.content_hash not in pinned
        if off_plan:
            ctx.lock.require_reason(reason, what)
        grader_id = store.grading.ensure_grader(grader.name, grader.content_hash, grader.canonical)
        new = store.grading.insert_grader_results(grader_id, ctx.id, results)
        if new:
            before = next(
                (
                    f"grader {name} {h[:12]} as locked"
                    for h, name in pinned.items()
                    if name == grader.name
                ),
                f"grader {grader.name} not pinned by the lock",
            )
            after = f"grader {grader.name} {grader.content_hash[:12]} graded ({new} results)"
            locked = ctx.lock.change(
                actor,
                reason,
                "graded",
                before,
                after,
                deviates=off_plan,
                grader=grader.name,
                content_hash=grader.content_hash,
                results=new,
                digest=store.audit.grader_results_digest(ctx.id, grader.content_hash),
            )
    ctx.forget("graders in force", "grader results in force")
    return GradeOutcome(
        study,
        grader.name,
        grader.content_hash,
        len(outputs),
        len(grader.checks),
        len(results),
        new,
        new > 0 and off_plan and locked,
    )


def results_in_force(ctx: StudyContext) -> pd.DataFrame:
    """The stored results of the grader versions in force, one row per (output, check): grader,
    grader_hash, check, system, item_key, category, reference, passed, label. Read once per
    context."""

    def read() -> pd.DataFrame:
        chosen = graders_in_force(ctx)
        frame = ctx.store.grading.grader_results(ctx.id, [g["id"] for g in chosen])
        return frame.assign(passed=frame["passed"].astype(bool))

    return ctx.memo("grader results in force", read)


def _choice_labels(chosen: list[dict]) -> dict[tuple[str, str], list[str] | None]:
    labels = {}
    for g in chosen:
        for check in json.loads(g["body"])["checks"]:
            if check["type"] == "choice":
                labels[(g["name"], check["name"])] = check["params"].get("labels")
    return labels


def summarize(results: pd.DataFrame, choice_labels: dict) -> dict:
    """The pure summary of grader results: `graders` (pass rate with a Wilson 95% CI per grader,
    check and system, category None = all, then per category) and `choice` (accuracy and
    macro-F1 per system for each `choice` check)."""
    if results.empty:
        return {"graders": [], "choice": []}
    if not choice_labels:
        return {"graders": graders.pass_rates(results), "choice": []}
    reference = results["reference"].fillna("").astype(str)
    with_truth = results.assign(reference_label=graders.normalize(reference))
    return {
        "graders": graders.pass_rates(results),
        "choice": graders.choice_scores(with_truth, choice_labels),
    }


def grader_summary(ctx: StudyContext) -> dict:
    """Grader pass rates of a study, for the report, the scorecard and `grade`:

        {"versions": [{name, content_hash, pinned, n_results}],
         "graders": [{grader, check, system, category, passed, n, rate, ci}],
         "choice": [{grader, check, system, accuracy, accuracy_ci, macro_f1, labels, n}]}

    Rates are 0..1, `ci` a Wilson 95% interval, category None = every output. Only the versions
    in force count (see `graders_in_force`). OutcomesHidden until the thresholds are locked."""
    ctx.lock.require_visible()
    chosen = graders_in_force(ctx)
    summary = summarize(results_in_force(ctx), _choice_labels(chosen))
    versions = [{k: g[k] for k in ("name", "content_hash", "pinned", "n_results")} for g in chosen]
    return {"versions": versions, **summary}


def has_results(store: Store, study: str | dict) -> bool:
    study_row = store.studies.require_study(study) if isinstance(study, str) else study
    return store.grading.has_grader_results(study_row["id"])


def check_names(ctx: StudyContext) -> list[str]:
    """The check names of the graders in force on the study (no outcome: safe before the lock)."""
    chosen = graders_in_force(ctx)
    return sorted({c["name"] for g in chosen for c in json.loads(g["body"])["checks"]})


def grader_names(ctx: StudyContext) -> list[str]:
    return [g["name"] for g in graders_in_force(ctx)]
