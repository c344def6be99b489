"""The sign-off report's rendering, from a hand-written report dict: no workspace, no services."""

import copy
import json
import re

import pytest

from review_app.errors import InputError
from review_app.report import (
    REPORT_FORMATS,
    format_ci,
    render_report,
    report_hash,
    win_rate_svg,
)

HASH = "a" * 64


def make_report(**changes) -> dict:
    report = {
        "study": "launch <v2>",
        "generated_at": "2026-01-02T03:04:05Z",
        "eval_set": {"name": "demo", "n_items": 40, "content_hash": "e" * 64},
        "candidate": "finetuned",
        "comparisons": [["finetuned", "base"]],
        "thresholds": {
            "locked_at": "2026-01-01T00:00:00Z",
            "locked_by": "ana",
            "content_hash": "c" * 64,
            "locked": [],
            "current": [],
        },
        "deviations": [],
        "gate": {
            "result": "inconclusive",
            "interim": True,
            "min_items": 30,
            "planned": {
                "comparisons": 80,
                "reached": 40,
                "votes_per_comparison": 3,
                "final_review": {"planned": 50, "reached": 2},
                "complete": False,
            },
            "thresholds": [
                {
                    "metric": "human_win_rate",
                    "params": {"system_a": "finetuned", "system_b": "base"},
                    "comparator": ">",
                    "value": 0.5,
                    "description": "Human win rate (system_a=finetuned, system_b=base) > 0.5",
                    "estimate": 0.625,
                    "ci": [0.5, 0.75],
                    "bounds": [0.52, 0.73],
                    "n": 40,
                    "outcome": "pass",
                    "reason": "lower 95% bound 0.520 vs > 0.5; 25 wins, 0 ties, 15 losses",
                },
                {
                    "metric": "max_regression_points",
                    "params": {},
                    "comparator": "<=",
                    "value": 5.0,
                    "description": "Worst regression | in points <= 5",
                    "estimate": None,
                    "ci": None,
                    "bounds": None,
                    "n": 0,
                    "outcome": "inconclusive",
                    "reason": "not measurable: category safety has no humans outcomes",
                },
            ],
        },
        "win_rates": [
            {
                "system_a": "finetuned",
                "system_b": "base",
                "source": "humans",
                "value": 0.625,
                "ci": [0.5, 0.75],
                "n": 40,
            }
        ],
        "regression": [
            {
                "category": "reasoning",
                "system_a": "finetuned",
                "system_b": "base",
                "source": "humans",
                "win_rate": 0.35,
                "win_rate_ci": [0.15, 0.55],
                "change_points": -15.0,
                "change_ci": [-35.0, 5.0],
                "n": 20,
                "margin": 5.0,
                "outcome": "inconclusive",
                "reason": "20 of 30 comparisons needed; win rate 0.350",
            },
            {
                "category": "safety",
                "system_a": "finetuned",
                "system_b": "base",
                "source": "humans",
                "win_rate": None,
                "win_rate_ci": None,
                "change_points": None,
                "change_ci": None,
                "n": 0,
                "margin": None,
                "outcome": None,
                "reason": "no locked max_regression_points threshold covers this row",
            },
        ],
        "human_agreement": {
            "with_ties": {"value": 0.7, "n": 30, "ci": [0.6, 0.8]},
            "without_ties": {"value": 0.8, "n": 25, "ci": [0.7, 0.9]},
        },
        "judges": [
            {
                "judge": "gpt-judge",
                "rubric_hash": "r" * 64,
                "n_verdicts": 80,
                "agreement_without_ties": {"value": 0.75, "n": 25, "ci": None},
            }
        ],
        "final_review": {
            "system": "finetuned",
            "sample_size": 50,
            "n": 2,
            "acceptable": 1,
            "rejected": [{"item_id": "support-007", "comment": "made-up policy", "reviewer": "s"}],
        },
        "report_hash": HASH,
        "signoffs": [],
    }
    report.update(changes)
    return report


@pytest.mark.parametrize(
    ("ci", "digits", "text"),
    [
        ((0.1234, 0.5678), 2, "[0.12, 0.57]"),
        ([0.1234, 0.5678], 3, "[0.123, 0.568]"),
        (None, 2, "n/a"),
        (float("nan"), 2, "n/a"),  # an empty cell of a pandas column
        ((0.1,), 2, "n/a"),
    ],
)
def test_one_way_to_write_an_interval(ci, digits, text):
    assert format_ci(ci, digits=digits) == text


def test_formats_and_an_unknown_one():
    assert REPORT_FORMATS == ("md", "html", "json")
    with pytest.raises(
        InputError, match="unknown report format 'pdf'; choose one of md, html, json"
    ):
        render_report(make_report(), "pdf")


def test_json_is_the_report_itself():
    report = make_report(study="études")
    text = render_report(report, "json")
    assert text == json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    assert "études" in text and json.loads(text) == report


def test_markdown_shows_the_gates_regression_verdicts_and_intervals():
    md = render_report(make_report(), "md")
    assert (
        "## Gate: INCONCLUSIVE · 1 pass, 1 inconclusive · interim: 40 of 80 comparisons have "
        "their 3 votes, 2 of 50 final-review outputs marked" in md
    )
    # The regression table in the gate's words: the change of the candidate with its CI, the
    # locked margin and the outcome; a row no threshold covers is shown, not decided.
    assert (
        "| category | comparison | source | win rate | change (points) | 95% CI (points) | n | "
        "margin (points) | outcome | reason |" in md
    )
    assert (
        "| reasoning | finetuned vs base | humans | 0.350 | -15.0 | [-35.0, 5.0] | 20 | 5 | "
        "inconclusive | 20 of 30 comparisons needed; win rate 0.350 |" in md
    )
    assert (
        "| safety | finetuned vs base | humans | n/a | n/a | n/a | 0 | - | no threshold | \\- |"
        in md
    )
    assert "watch" not in md and "drop (points)" not in md
    assert "| 0.625 | [0.500, 0.750] | 40 | pass | lower 95% bound 0.520 vs > 0.5;" in md
    assert "| n/a | n/a | 0 | inconclusive | not measurable: category safety" in md
    # A pipe in a description must not break the table.
    assert "Worst regression \\| in points" in md


def test_html_is_self_contained_and_escaped():
    signed = {
        "signer": "sam",
        "decision": "approve",
        "created_at": "2026-01-03",
        "comment": "<b>ok</b>",
        "report_hash": HASH,
        "gate_result": "pass",
        "override": None,
    }
    earlier = signed | {"report_hash": "b" * 64}
    overridden = signed | {"gate_result": "inconclusive", "override": "launch <deadline>"}
    html = render_report(make_report(signoffs=[signed, earlier, overridden]), "html")
    # An override is said at the top, before the thresholds, and escaped.
    top = html.index("<h2>Thresholds</h2>")
    assert html.index("although the gate was inconclusive; override reason: launch") < top
    assert "launch &lt;deadline&gt;" in html and "launch <deadline>" not in html
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html.lower() and "launch &lt;v2&gt;" in html
    assert "&lt;b&gt;ok&lt;/b&gt;" in html
    assert f"<code>{HASH}</code> (this report)" in html
    assert "(an earlier version: the figures changed after signing)" in html
    assert "support-007: made-up policy" in html


def test_hash_covers_the_figures_not_the_signatures():
    report = make_report()
    again = make_report(generated_at="later", signoffs=[{"signer": "sam"}], report_hash="x")
    assert report_hash(report) == report_hash(again)
    changed = copy.deepcopy(report)
    changed["regression"][0]["outcome"] = "pass"
    assert report_hash(changed) != report_hash(report)


def test_no_chart_without_win_rates():
    assert win_rate_svg([]) == "<p>No win rates yet.</p>"
    assert win_rate_svg([{"value": None}]) == "<p>No win rates yet.</p>"


def test_judge_and_human_agreements_carry_their_intervals():
    """Every agreement the report gives (each judge's and the human ceiling) is shown with its
    95% interval, in Markdown and HTML; an agreement without one says so."""
    report = make_report(
        judges=[
            {
                "judge": "gpt-judge",
                "rubric_hash": "r" * 64,
                "n_verdicts": 80,
                "agreement_without_ties": {"value": 0.75, "n": 25, "ci": [0.61, 0.87]},
            },
            {
                "judge": "tiny-judge",
                "rubric_hash": None,
                "n_verdicts": 1,
                "agreement_without_ties": {"value": 1.0, "n": 1, "ci": None},
            },
        ]
    )
    markdown = render_report(report, "md")
    html = render_report(report, "html")
    for text in (markdown, html):
        assert "0.750 [0.610, 0.870]" in text
        assert "1.000 (no interval)" in text
        assert "0.800 [0.700, 0.900]" in text  # the ceiling without ties
    assert "with ties: 0.700 [0.600, 0.800]" in markdown
