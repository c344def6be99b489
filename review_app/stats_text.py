"""`review-app stats` as a reader sees it: a study's calibration statistics as the JSON document
(docs/statistics.md) or as text tables, and the estimate and table formatting the CLI shares.
Pure functions over what the calibration services return; nothing here reads the store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from review_app.errors import InputError

if TYPE_CHECKING:
    from review_app import stats
    from review_app.services.calibration import CalibrationReport, PointwiseScores

STATS_FORMATS = ("text", "json")


def fmt_estimate(estimate: dict | None) -> str:
    if estimate is None or estimate["value"] is None:
        return "-"
    text = f"{estimate['value']:.2f}"
    if estimate.get("ci"):
        lo, hi = estimate["ci"]
        text += f" [{lo:.2f},{hi:.2f}]"
    return f"{text} n={estimate['n']}"


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return lines


def stats_document(
    report: CalibrationReport,
    preferences: list[stats.SelfPreference],
    pointwise: PointwiseScores,
    split: str,
) -> dict:
    """The `review-app stats --json` document: the calibration report's, with the split it covers,
    self-preference and the pointwise scores."""
    document = report.document()
    document["split"] = split
    # Before the lock the win rates would say which system the humans prefer: only the shift.
    visible = pointwise.by_system
    document["self_preference"] = [
        p.to_json() | ({} if visible else {"judge_win_rate": None, "human_win_rate": None})
        for p in preferences
    ]
    document["pointwise_scores"] = pointwise.to_json()
    return document


def stats_lines(
    report: CalibrationReport,
    preferences: list[stats.SelfPreference],
    pointwise: PointwiseScores,
    split: str,
    test_looks: int | None = None,
) -> list[str]:
    """The statistics as text: the human ceiling, one row per judge with its verdict, agreement by
    category, pointwise scores, self-preference and the small-sample warnings. With `test_looks`,
    how many times the study's test comparisons have been looked at."""
    document = stats_document(report, preferences, pointwise, split)
    lines: list[str] = []
    humans = document["humans"]
    part = f" ({split} part of the split)" if split != "all" else ""
    lines.append(
        f"study {report.study}{part}: {document['n_comparisons']} comparisons, "
        f"{document['n_votes']} votes"
    )
    if test_looks is not None:
        lines.append(f"test looked at {test_looks} times")
    lines.append("")
    lines.append("humans (the ceiling a judge is measured against)")
    for name, value in (
        ("strict agreement", humans["agreement_strict"]),
        ("agreement with ties", humans["agreement"]["with_ties"]),
        ("agreement without ties", humans["agreement"]["without_ties"]),
        ("kappa with ties", humans["kappa"]["with_ties"]),
        ("kappa without ties", humans["kappa"]["without_ties"]),
        ("Fleiss' kappa", humans["fleiss_kappa"]),
        ("Krippendorff's alpha", humans["krippendorff_alpha"]),
        ("p_left", humans["p_left"]),
        ("p_longer", humans["p_longer"]),
    ):
        lines.append(f"  {name:24} {fmt_estimate(value)}")
    lines.append("")
    rows = []
    for judge in document["judges"]:
        info = report.judges.get(judge["judge"])
        rows.append(
            [
                judge["judge"],
                judge["vs_ceiling"]["verdict"],
                fmt_estimate(judge["agreement_strict"]),
                fmt_estimate(judge["decisive_share"]),
                fmt_estimate(judge["agreement"]["without_ties"]),
                fmt_estimate(judge["agreement"]["with_ties"]),
                fmt_estimate(judge["kappa"]["without_ties"]),
                fmt_estimate(judge["consistency"]),
                fmt_estimate(judge["p_first"]),
                fmt_estimate(judge["p_longer"]),
                str(judge["n_unparsed"]),
                info.source if info else "",
            ]
        )
    headers = [
        "judge",
        "vs ceiling",
        "strict agreement",
        "decisive share",
        "agreement w/o ties",
        "agreement w/ ties",
        "kappa w/o ties",
        "consistency",
        "p_first",
        "p_longer",
        "unparsed",
        "source",
    ]
    lines += text_table(headers, rows)
    if report.length_preference_withheld:
        lines.append(report.LENGTH_PREFERENCE_WITHHELD)
    lines.append("")
    for label, assessment in report.assessments.items():
        lines.append(f"{label}: {assessment.text}")
    if document["by_category"]:
        lines.append("")
        lines.append("agreement without ties by category")
        labels = [j["judge"] for j in document["judges"]]
        rows = []
        for category, section in document["by_category"].items():
            by_judge = {j["judge"]: j for j in section["judges"]}
            rows.append(
                [category, fmt_estimate(section["humans"]["agreement"]["without_ties"])]
                + [
                    fmt_estimate(by_judge[label]["agreement"]["without_ties"])
                    if label in by_judge
                    else "-"
                    for label in labels
                ]
            )
        lines += text_table(["category", "humans", *labels], rows)
    if not pointwise.table.empty:
        lines.append("")
        lines.append(
            "pointwise scores (mean per comparison over both orders; a jury's is its judges' mean)"
            + ("" if pointwise.by_system else "; systems pooled until the thresholds are locked")
        )
        rows = [
            [r.judge, r.system, r.criterion, f"{r.mean_score:.2f}", str(r.n_comparisons)]
            for r in pointwise.table.itertuples()
        ]
        lines += text_table(["judge", "system", "criterion", "mean score", "comparisons"], rows)
    for p in preferences:
        flag = "FLAGGED: " if p.flagged else ""
        rates = (
            f" (judge {p.judge_win_rate:.2f}, humans {p.human_win_rate:.2f})"
            if p.judge_win_rate is not None and p.human_win_rate is not None
            else " (win rates shown once the thresholds are locked)"
        )
        lines.append(
            f"{flag}self-preference of {p.judge} for {p.system} (same family): win-rate shift "
            f"{fmt_estimate(p.shift.to_json())}{rates}"
            if p.shift.value is not None
            else f"self-preference of {p.judge} for {p.system}: no comparison with both a "
            "verdict and a vote"
        )
    if report.warnings:
        lines.append("")
        for warning in report.warnings:
            lines.append(f"warning: {warning}")
    return lines


def render_stats(
    report: CalibrationReport,
    preferences: list[stats.SelfPreference],
    pointwise: PointwiseScores,
    split: str,
    fmt: str = "text",
    test_looks: int | None = None,
) -> str:
    """The statistics in one of STATS_FORMATS, without a final newline (the CLI prints it);
    InputError names the choices for any other."""
    if fmt == "json":
        return json.dumps(stats_document(report, preferences, pointwise, split), indent=2)
    if fmt == "text":
        return "\n".join(stats_lines(report, preferences, pointwise, split, test_looks))
    raise InputError(f"unknown stats format {fmt!r}; choose one of {', '.join(STATS_FORMATS)}")
