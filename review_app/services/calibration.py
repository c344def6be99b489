"""Calibration: how far each judge can be trusted beside the human ceiling (agreement, bias,
self-preference, pointwise scores), as the calibration screen and `review-app stats` show it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from review_app import auth, baselines, families, stats
from review_app.auth import Actor
from review_app.services import early_looks, juries, study_data
from review_app.services.context import StudyContext
from review_app.services.decision import evaluate_gate
from review_app.services.rubric_iteration import looks_at_test, record_test_look, split_pair_ids
from review_app.services.study_data import JudgeInfo
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "CalibrationReport",
    "PointwiseScores",
    "calibration_data_version",
    "calibration_report",
    "pointwise_scores",
    "self_preference",
    "self_preference_of",
    "self_preference_shifts",
]

# A CI wider than this (about +-0.1) is flagged as too uncertain to read, with the votes needed.
CI_TARGET_WIDTH = 0.2


@dataclass(frozen=True)
class CalibrationReport:
    """Everything the calibration screen and `review-app stats` show for one study."""

    study: str
    calibration: stats.Calibration
    judges: dict[str, JudgeInfo]
    assessments: dict[str, stats.Assessment]
    warnings: list[str]
    reference: str
    # Before the lock p_longer is withheld (see `stats.without_length_preference`).
    length_preference_withheld: bool = False

    LENGTH_PREFERENCE_WITHHELD = (
        "p_longer is withheld until the thresholds are locked: when one system's outputs are "
        "reliably the longer ones it reads as that system's win rate. The verbosity gap (judge "
        "minus humans) is shown."
    )

    def document(self) -> dict:
        """The `review-app stats --json` document (docs/statistics.md)."""
        return self.calibration.to_json()


def _reference_label(infos: dict[str, JudgeInfo]) -> str:
    """The label of the longest-output baseline: a stored run of it, else the computed one."""
    return next(
        (label for label, info in infos.items() if info.judge == baselines.REFERENCE),
        baselines.REFERENCE,
    )


def calibration_report(
    ctx: StudyContext, split: str = "all", looked_by: Actor | None = None
) -> CalibrationReport:
    """Every calibration statistic of a study (docs/statistics.md), overall and per category,
    for every judge run, imported judge and baseline, with a verdict on each judge. With `split`
    "dev" or "test", on that part of the study's split only. With `looked_by`, a report that
    shows test agreement (see `looks_at_test`) is recorded as a look at test by that person;
    without, the recording is the caller's (a screen records a look once per choice). Before
    the lock, the agreement of a judge that can stand in for the outcomes is a recorded look by
    `looked_by` (else the context's actor), and left out for anyone who may not look."""
    store, study = ctx.store, ctx.name
    data = ctx.data(split)
    if looked_by is not None and looks_at_test(store, study, split):
        record_test_look(store, study, data.real_judges, looked_by)
    calibration = data.statistics.calibration
    withheld = not ctx.lock.visible
    sealed: list[str] = []
    if withheld:
        calibration = stats.without_length_preference(calibration)
        calibration, sealed = _looked_at(ctx, data, calibration, looked_by or ctx.actor)
    overall = calibration.overall
    reference_label = _reference_label(data.judges)
    reference = reference_label if overall.judge(reference_label) is not None else None
    assessments = {
        j.judge: stats.assess_judge(j, overall.humans, reference) for j in overall.judges
    }
    skip = [j for j in data.judge_order if baselines.is_baseline(j)]
    return CalibrationReport(
        study=study,
        calibration=calibration,
        judges=data.judges,
        assessments=assessments,
        warnings=sealed + stats.small_n_warnings(overall, CI_TARGET_WIDTH, skip=skip),
        reference=reference_label,
        length_preference_withheld=withheld,
    )


def _looked_at(
    ctx: StudyContext, data: study_data.StudyData, calibration: stats.Calibration, actor
) -> tuple[stats.Calibration, list[str]]:
    """Before the lock, the agreement of a judge that can stand in for the outcomes (see
    `early_looks.revealing_judges`) is shown only as a recorded look by someone who may look at
    outcomes; for anyone else those judges are left out, with one warning each."""
    revealing = early_looks.revealing_judges(data)
    shown = [j for j in calibration.overall.judges if j.judge in revealing]
    if not shown:
        return calibration, []
    if actor is not None and auth.allowed(actor, "look at outcomes"):
        figures = [
            {
                "judge": j.judge,
                "why": revealing[j.judge],
                "agreement_with_ties": j.agreement_with_ties.to_json(),
                "agreement_without_ties": j.agreement_without_ties.to_json(),
            }
            for j in shown
        ]
        early_looks.record_look(ctx, actor, "judge agreement", figures)
        return calibration, []

    def without(a: stats.Analysis) -> stats.Analysis:
        return replace(a, judges=[j for j in a.judges if j.judge not in revealing])

    calibration = stats.Calibration(
        overall=without(calibration.overall),
        by_category={name: without(a) for name, a in calibration.by_category.items()},
    )
    return calibration, [
        f"{j.judge}: left out until the lock ({revealing[j.judge]}, so its agreement with the "
        "humans reads as a win rate); an admin or signer sees it as a recorded look"
        for j in shown
    ]


def calibration_data_version(store: Store, study: str) -> str:
    """A key that changes whenever the study's votes, verdicts, runs or pairs change, so a page
    can cache `calibration_report` safely."""
    return store.frames.calibration_data_version(store.studies.require_study(study)["id"])


# ---- self-preference ----


def self_preference(ctx: StudyContext, split: str = "all") -> list[stats.SelfPreference]:
    """For every real judge whose model family is known and matches a system's: the judge's
    win-rate shift toward that system relative to the humans, on that system's comparisons
    against systems of other families (paired CI; flagged when it excludes 0). Families come
    from the names, overridden by REVIEW_APP_MODEL_FAMILIES. Before the thresholds are locked
    only the shift is given: the judge's and the humans' own win rates for the system would say
    which system the humans prefer. After the lock those win rates are outcomes: before the
    planned sample is in, showing them is a recorded look (`decision.evaluate_gate`)."""
    if ctx.lock.visible:
        evaluate_gate(ctx)
    return self_preference_of(ctx.data(split), ctx.settings, visible=ctx.lock.visible)


def self_preference_shifts(ctx: StudyContext, split: str = "all") -> list[stats.SelfPreference]:
    """`self_preference` without the judge's and the humans' own win rates, before and after the
    lock: a shift names no system's win rate, so showing it is no look at outcomes and needs no
    gate evaluation (the calibration screen shows the shifts only)."""
    return self_preference_of(ctx.data(split), ctx.settings, visible=False)


def self_preference_of(
    data: study_data.StudyData, settings: Settings, visible: bool = True
) -> list[stats.SelfPreference]:
    """`self_preference` on study data already loaded (the sign-off report reads it once);
    without `visible`, the judge's and the humans' own win rates are left out."""
    overrides = families.parse_overrides(settings.model_families)
    pairs = data.pairs
    systems = sorted(set(pairs["system_x"]) | set(pairs["system_y"]))
    system_family = {s: families.family_of(s, overrides) for s in systems}
    out = []
    for label in data.real_judges:
        info = data.judges[label]
        family = families.family_of(label, overrides) or families.family_of(info.judge, overrides)
        if family is None:
            continue
        for system in systems:
            if system_family[system] != family:
                continue
            other = pairs["system_y"].where(pairs["system_x"] == system, pairs["system_x"])
            own = (pairs["system_x"] == system) | (pairs["system_y"] == system)
            against = own & (other.map(system_family) != family)
            found = stats.self_preference(
                pairs[against],
                data.votes,
                data.real_verdicts,  # `label` is a real judge: no baseline rows to build
                label,
                system,
                seed=settings.seed,
                n_boot=settings.bootstrap_resamples,
            )
            if not visible:
                found = replace(found, judge_win_rate=None, human_win_rate=None)
            out.append(found)
    return out


# ---- pointwise scores (judges' and juries') ----


@dataclass(frozen=True)
class PointwiseScores:
    """Judges' and juries' pointwise scores: per judge, system and criterion, the mean over
    comparisons of its score (both orders averaged) and the comparisons behind it. Before the
    thresholds are locked both systems are pooled (`by_system` False): a per-system mean would
    say which system a judge prefers."""

    table: pd.DataFrame  # judge, system, criterion, mean_score, n_comparisons
    by_system: bool

    def to_json(self) -> dict:
        return {"by_system": self.by_system, "rows": self.table.to_dict("records")}


def pointwise_scores(ctx: StudyContext, split: str = "all") -> PointwiseScores:
    """The pointwise scores of every judge run that has them and of every jury (the mean of its
    members' scores), on one part of the split when `split` is dev or test (not itself a look at
    test: `stats --split test` records one)."""
    store, study_row = ctx.store, ctx.study
    keep = split_pair_ids(store, ctx.name, split)
    scores = juries.member_scores(store, study_row["id"])
    if keep is not None:
        scores = scores[scores["pair_id"].isin(keep)]
    frames = [scores]
    for jury in store.calibration.juries(study_row["id"]):
        own = scores[scores["judge"].isin(jury["members"])]
        frames.append(own.assign(judge=juries.jury_label(jury["name"])))
    visible = ctx.lock.visible
    table = stats.pointwise_summary(pd.concat(frames, ignore_index=True), by_system=visible)
    return PointwiseScores(table, visible)
