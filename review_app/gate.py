"""The final human gate: threshold definitions and their evaluation against a study's statistics,
the content hash that pins a locked set of thresholds, and the sign-off report in JSON, Markdown
and self-contained HTML. Pure functions over plain data; storage lives in store.py."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from review_app import stats
from review_app.errors import InputError

COMPARATORS = (">=", ">", "<=", "<")
HUMANS = stats.HUMANS


@dataclass(frozen=True)
class Metric:
    """A gate metric: what it measures, which parameters it takes, and its usual comparator."""

    name: str
    label: str
    params: tuple[str, ...]
    comparator: str
    example: float
    help: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "human_win_rate",
            "Human win rate",
            ("system_a", "system_b"),
            ">=",
            0.6,
            "(wins + 0.5 ties) / votes of system_a over system_b, from human votes.",
        ),
        Metric(
            "human_win_rate_ci_low",
            "Human win rate, CI lower bound",
            ("system_a", "system_b"),
            ">=",
            0.5,
            "Lower end of the 95% bootstrap CI of the human win rate.",
        ),
        Metric(
            "judge_win_rate",
            "Judge win rate",
            ("system_a", "system_b", "judge"),
            ">=",
            0.6,
            "Win rate of system_a over system_b from the judge's combined verdicts.",
        ),
        Metric(
            "judge_agreement",
            "Judge-human agreement",
            ("judge", "ties"),
            ">=",
            0.8,
            "Share of (vote, combined verdict) pairs that agree; ties = with | without.",
        ),
        Metric(
            "judge_agreement_vs_ceiling",
            "Judge agreement minus human-human agreement",
            ("judge", "ties"),
            ">=",
            0.0,
            "Judge-human agreement minus the human-human ceiling (0 = as good as a human).",
        ),
        Metric(
            "judge_beats_baseline",
            "Judge agreement minus a baseline's",
            ("judge", "baseline"),
            ">",
            0.0,
            "Judge-human agreement without ties minus the same for a baseline judge.",
        ),
        Metric(
            "max_regression_points",
            "Worst regression versus the reference system, in points",
            ("system_a", "system_b", "categories", "source"),
            "<=",
            5.0,
            "Worst category (of the listed ones; empty = all) by 100 x (0.5 - win rate of "
            "system_a over system_b); source = humans or a judge label.",
        ),
        Metric(
            "final_review_acceptable_rate",
            "Final review: acceptable rate",
            (),
            ">=",
            0.9,
            "Share of the signer's final-review sample marked acceptable.",
        ),
    )
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    params: dict[str, Any]
    comparator: str
    value: float

    def key(self) -> dict:
        return {
            "metric": self.metric,
            "params": self.params,
            "comparator": self.comparator,
            "value": self.value,
        }

    def describe(self) -> str:
        metric = METRICS[self.metric]
        args = ", ".join(
            f"{k}={'+'.join(v) if isinstance(v, list) else v}"
            for k, v in self.params.items()
            if v not in ("", None, [])
        )
        return f"{metric.label}{f' ({args})' if args else ''} {self.comparator} {self.value:g}"


def validate_threshold(
    metric: str, params: dict[str, Any], comparator: str, value: float
) -> Threshold:
    """A Threshold with its parameters checked; InputError names what is wrong."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    spec = METRICS[metric]
    if comparator not in COMPARATORS:
        raise InputError(f"comparator {comparator!r}: choose one of {', '.join(COMPARATORS)}")
    unknown = set(params) - set(spec.params)
    if unknown:
        raise InputError(
            f"metric {metric} takes {', '.join(spec.params) or 'no parameters'}; "
            f"not {', '.join(sorted(unknown))}"
        )
    clean: dict[str, Any] = {}
    for name in spec.params:
        raw = params.get(name)
        if name == "categories":
            if isinstance(raw, str):
                raw = [c.strip() for c in raw.split(",") if c.strip()]
            clean[name] = sorted(raw or [])
        elif name == "ties":
            clean[name] = raw or "without"
            if clean[name] not in ("with", "without"):
                raise InputError(f"metric {metric}: ties must be 'with' or 'without'")
        elif name == "source":
            clean[name] = raw or HUMANS
        else:
            if not raw or not str(raw).strip():
                raise InputError(f"metric {metric} needs the parameter {name}")
            clean[name] = str(raw).strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold value {value!r} is not a number") from None
    return Threshold(metric, clean, comparator, number)


def thresholds_hash(thresholds: list[Threshold]) -> str:
    """Content hash of a set of thresholds, independent of their order."""
    canonical = sorted(json.dumps(t.key(), sort_keys=True) for t in thresholds)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


# ---- evaluation ----


@dataclass
class GateInputs:
    """Everything thresholds are evaluated against, computed once per study."""

    calibration: stats.Calibration
    win_rates: list[stats.WinRate]
    category_win_rates: dict[str, list[stats.WinRate]]
    final_review: dict[str, Any] = field(default_factory=lambda: {"n": 0, "acceptable": 0})

    def win_rate(
        self, a: str, b: str, source: str, category: str | None = None
    ) -> stats.WinRate | None:
        rates = self.win_rates if category is None else self.category_win_rates.get(category, [])
        return next(
            (w for w in rates if (w.system_a, w.system_b, w.source) == (a, b, source)), None
        )


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    value: float | None
    ci: tuple[float, float] | None
    n: int | None
    passed: bool
    detail: str

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold.key(),
            "description": self.threshold.describe(),
            "value": self.value,
            "ci": list(self.ci) if self.ci else None,
            "n": self.n,
            "passed": self.passed,
            "detail": self.detail,
        }


def _compare(value: float, comparator: str, target: float) -> bool:
    return {
        ">=": value >= target,
        ">": value > target,
        "<=": value <= target,
        "<": value < target,
    }[comparator]


def _agreement(judge: stats.JudgeStats | stats.HumanStats, ties: str) -> stats.Estimate:
    return judge.agreement_with_ties if ties == "with" else judge.agreement_without_ties


def measure(threshold: Threshold, inputs: GateInputs) -> tuple[float | None, Any, int | None, str]:
    """(value, ci, n, detail) of one threshold's metric; value None when it cannot be measured."""
    p = threshold.params
    overall = inputs.calibration.overall
    m = threshold.metric
    if m in ("human_win_rate", "human_win_rate_ci_low", "judge_win_rate"):
        source = p.get("judge", HUMANS)
        w = inputs.win_rate(p["system_a"], p["system_b"], source)
        if w is None or w.value is None:
            return None, None, 0, f"no {source} outcomes for {p['system_a']} vs {p['system_b']}"
        if m == "human_win_rate_ci_low":
            low = w.ci[0] if w.ci else None
            return low, w.ci, w.n, f"win rate {w.value:.3f}, CI {_ci(w.ci)}"
        return w.value, w.ci, w.n, f"{w.wins} wins, {w.ties} ties, {w.losses} losses"
    if m in ("judge_agreement", "judge_agreement_vs_ceiling"):
        judge = overall.judge(p["judge"])
        if judge is None:
            return None, None, 0, f"no verdicts from judge {p['judge']}"
        est = _agreement(judge, p["ties"])
        if est.value is None:
            return None, None, est.n, "no comparison with both a vote and a parsed verdict"
        if m == "judge_agreement":
            return est.value, est.ci, est.n, f"{p['ties']} ties"
        ceiling = _agreement(overall.humans, p["ties"])
        if ceiling.value is None:
            return None, None, est.n, "no human-human overlap to measure the ceiling"
        return (
            est.value - ceiling.value,
            None,
            est.n,
            f"judge {est.value:.3f} vs humans {ceiling.value:.3f} ({p['ties']} ties)",
        )
    if m == "judge_beats_baseline":
        judge, baseline = overall.judge(p["judge"]), overall.judge(p["baseline"])
        if judge is None or baseline is None:
            missing = p["judge"] if judge is None else p["baseline"]
            return None, None, 0, f"no verdicts from judge {missing}"
        a, b = judge.agreement_without_ties, baseline.agreement_without_ties
        if a.value is None or b.value is None:
            return None, None, a.n, "agreement without ties is not measurable"
        return a.value - b.value, None, a.n, f"judge {a.value:.3f} vs {p['baseline']} {b.value:.3f}"
    if m == "max_regression_points":
        worst: tuple[float, str, stats.WinRate] | None = None
        for category in p["categories"] or sorted(inputs.category_win_rates):
            w = inputs.win_rate(p["system_a"], p["system_b"], p["source"], category)
            if w is None or w.value is None:
                if p["categories"]:  # a named regression suite must be measured, never skipped
                    return None, None, 0, f"category {category} has no {p['source']} outcomes"
                continue
            drop = 100 * (0.5 - w.value)
            if worst is None or drop > worst[0]:
                worst = (drop, category, w)
        if worst is None:
            return None, None, 0, "no category has outcomes for this comparison"
        drop, category, w = worst
        return drop, None, w.n, f"worst: {category} (win rate {w.value:.3f}, n={w.n})"
    if m == "final_review_acceptable_rate":
        n, ok = inputs.final_review["n"], inputs.final_review["acceptable"]
        if not n:
            return None, None, 0, "the final review has not been done"
        return ok / n, None, n, f"{ok} of {n} acceptable"
    raise InputError(f"unknown metric {m!r}")


def evaluate(thresholds: list[Threshold], inputs: GateInputs) -> list[ThresholdResult]:
    """Each threshold against the study; one that cannot be measured fails, saying why."""
    results = []
    for t in thresholds:
        value, ci, n, detail = measure(t, inputs)
        passed = value is not None and _compare(value, t.comparator, t.value)
        if value is None:
            detail = f"not measurable: {detail}"
        results.append(ThresholdResult(t, value, ci, n, passed, detail))
    return results


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a"


def win_rate_json(w: stats.WinRate) -> dict:
    return asdict(w) | {"ci": list(w.ci) if w.ci else None}


# ---- report ----


def report_hash(report: dict) -> str:
    """Hash of a report's content: everything except when it was generated and its sign-offs."""
    body = {k: v for k, v in report.items() if k not in ("generated_at", "signoffs", "report_hash")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def render_markdown(report: dict) -> str:
    lines = [f"# Ship decision report: study {report['study']}", ""]
    es = report["eval_set"]
    lines += [
        f"- Eval set: **{es['name']}** ({es['n_items']} items), hash `{es['content_hash']}`",
        f"- Comparisons: {', '.join(f'{a} vs {b}' for a, b in report['comparisons'])}",
        f"- Report hash: `{report['report_hash']}`",
        f"- Generated: {report['generated_at']}",
        "",
        f"## Gate: {'PASS' if report['gate_passed'] else 'FAIL'}",
        "",
    ]
    th = report["thresholds"]
    if th["locked_at"]:
        lines.append(
            f"Thresholds locked by {th['locked_by']} at {th['locked_at']} "
            f"(hash `{th['content_hash']}`)."
        )
    lines += ["", "| threshold | value | CI | n | result | detail |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(
            f"| {_md(r['description'])} | {value} | {_ci(r['ci'])} | {r['n'] or 0} | "
            f"{'pass' if r['passed'] else 'FAIL'} | {_md(r['detail'])} |"
        )
    if report["deviations"]:
        lines += ["", "### Deviations after the lock", ""]
        for d in report["deviations"]:
            lines.append(
                f"- {d['changed_at']} by {d['changed_by']}: {_md(d['before'])} -> "
                f"{_md(d['after'])}. Reason: {_md(d['reason'] or '(none given)')}"
            )
    lines += ["", "## Win rates", "", "| comparison | source | win rate | 95% CI | n |"]
    lines.append("|---|---|---|---|---|")
    for w in report["win_rates"]:
        value = "n/a" if w["value"] is None else f"{w['value']:.3f}"
        lines.append(
            f"| {w['system_a']} vs {w['system_b']} | {_md(w['source'])} | {value} | "
            f"{_ci(w['ci'])} | {w['n']} |"
        )
    lines += ["", "## Regression by category", ""]
    lines += ["| category | comparison | source | win rate | delta (points) | n |"]
    lines.append("|---|---|---|---|---|---|")
    for r in report["regression"]:
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        delta = "n/a" if r["delta_points"] is None else f"{r['delta_points']:+.1f}"
        lines.append(
            f"| {_md(r['category'])} | {r['system_a']} vs {r['system_b']} | {_md(r['source'])} | "
            f"{value} | {delta} | {r['n']} |"
        )
    lines += ["", "## Judges", "", "| judge | rubric hash | verdicts | agreement (no ties) | n |"]
    lines.append("|---|---|---|---|---|")
    for j in report["judges"]:
        agree = j["agreement_without_ties"]
        value = "n/a" if agree["value"] is None else f"{agree['value']:.3f}"
        lines.append(
            f"| {_md(j['judge'])} | `{j['rubric_hash'] or '-'}` | {j['n_verdicts']} | {value} | "
            f"{agree['n']} |"
        )
    humans = report["human_agreement"]
    lines += [
        "",
        f"Human-human agreement without ties: {_value(humans['without_ties'])} "
        f"(n={humans['without_ties']['n']}); with ties: {_value(humans['with_ties'])} "
        f"(n={humans['with_ties']['n']}).",
    ]
    fr = report["final_review"]
    lines += ["", "## Final human review", ""]
    lines.append(
        f"{fr['acceptable']} of {fr['n']} reviewed outputs of {fr['system']} acceptable "
        f"({fr['n']} of the {fr['sample_size']}-output sample reviewed)."
    )
    for item in fr["rejected"]:
        lines.append(
            f"- not acceptable: {item['item_id']}: {_md(item['comment'] or '(no comment)')}"
        )
    lines += ["", "## Sign-off", ""]
    if not report["signoffs"]:
        lines.append("Not signed yet.")
    for s in report["signoffs"]:
        lines.append(
            f"- **{s['decision'].upper()}** by {s['signer']} at {s['created_at']} "
            f"(report hash `{s['report_hash']}`): {_md(s['comment'])}"
        )
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _value(est: dict) -> str:
    return _number(est["value"])


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_html(report: dict) -> str:
    """A single self-contained HTML file: inline CSS and an inline SVG chart, nothing remote."""
    e = html.escape
    rows = "".join(
        f"<tr class='{'pass' if r['passed'] else 'fail'}'><td>{e(r['description'])}</td>"
        f"<td>{_number(r['value'])}</td>"
        f"<td>{_ci(r['ci'])}</td><td>{r['n'] or 0}</td>"
        f"<td>{'pass' if r['passed'] else 'FAIL'}</td><td>{e(r['detail'])}</td></tr>"
        for r in report["results"]
    )
    markdown_body = render_markdown(report)
    verdict = "PASS" if report["gate_passed"] else "FAIL"
    n_passed = sum(1 for r in report["results"] if r["passed"])
    th = report["thresholds"]
    locked = (
        f"Locked by <b>{e(th['locked_by'])}</b> at {e(th['locked_at'])}, before the outcomes "
        f"were visible (hash <code>{e(th['content_hash'][:16])}</code>)."
        if th["locked_at"]
        else "Not locked."
    )
    deviations = "".join(
        f"<li>{e(d['changed_at'])} by {e(d['changed_by'])}: {e(d['before'])} &rarr; "
        f"{e(d['after'])}. Reason: {e(d['reason'] or '(none given)')}</li>"
        for d in report["deviations"]
    )
    if deviations:
        deviations = f"<p><b>Changed after the lock:</b></p><ul>{deviations}</ul>"
    fr = report["final_review"]
    rejected = "".join(
        f"<li>{e(item['item_id'])}: {e(item['comment'] or '(no comment)')}</li>"
        for item in fr["rejected"]
    )
    if rejected:
        rejected = f"<p>Marked not acceptable:</p><ul>{rejected}</ul>"
    judges = "".join(
        f"<tr><td>{e(j['judge'])}</td><td>{j['n_verdicts']}</td>"
        f"<td>{_value(j['agreement_without_ties'])}</td><td>{j['agreement_without_ties']['n']}</td>"
        f"<td><code>{e((j['rubric_hash'] or '-')[:16])}</code></td></tr>"
        for j in report["judges"]
    )
    humans = report["human_agreement"]["without_ties"]
    signoffs = "".join(_signoff_html(s, report["report_hash"]) for s in report["signoffs"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Ship decision report: {e(report["study"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2rem auto; color: #1d2433;
  padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; }} table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #dde2ea; padding: .35rem .5rem; text-align: left;
  font-size: .9rem; }}
tr.fail td {{ background: #fdecec; }} tr.pass td {{ background: #edf8ef; }}
.verdict {{ display: inline-block; padding: .3rem .8rem; border-radius: .4rem; font-weight: 700;
  color: white; background: {"#2e7d32" if report["gate_passed"] else "#c62828"}; }}
code {{ font-size: .8rem; }} details {{ margin-top: 2rem; }} .note {{ color: #5a6478; }}
pre {{ white-space: pre-wrap; background: #f6f8fa; padding: 1rem; font-size: .8rem; }}
</style></head><body>
<h1>Ship decision report: study {e(report["study"])}</h1>
<p>Candidate <b>{e(report["candidate"])}</b>, compared with
{", ".join(e(b) for _, b in report["comparisons"])}.
Eval set <b>{e(report["eval_set"]["name"])}</b> ({report["eval_set"]["n_items"]} items),
hash <code>{e(report["eval_set"]["content_hash"] or "")}</code><br>
Report hash <code>{e(report["report_hash"])}</code> · generated {e(report["generated_at"])}</p>
<p>Gate: <span class="verdict">{verdict}</span> {n_passed} of {len(report["results"])}
thresholds met.</p>
<h2>Thresholds</h2>
<p>{locked}</p>{deviations}
<table><tr><th>threshold</th><th>value</th><th>95% CI</th><th>n</th><th>result</th>
<th>detail</th></tr>{rows}</table>
<h2>Win rates</h2>
<p class="note">Share of comparisons the first system wins ((wins + 0.5 ties) / n), from human
votes and from each judge; the line is the 95% bootstrap interval, the dashed line parity.</p>
{win_rate_svg(report["win_rates"])}
<h2>Judges</h2>
<p class="note">Agreement with the human votes, ties excluded. Human-human agreement (the ceiling):
{_value(humans)} (n={humans["n"]}).</p>
<table><tr><th>judge</th><th>verdicts</th><th>agreement</th><th>n</th><th>rubric hash</th></tr>
{judges}</table>
<h2>Final human review</h2>
<p>{fr["acceptable"]} of {fr["n"]} reviewed outputs of {e(fr["system"])} marked acceptable
({fr["n"]} of the {fr["sample_size"]}-output sample reviewed).</p>
{rejected}
<h2>Sign-off</h2><ul>{signoffs or "<li>Not signed yet.</li>"}</ul>
<details><summary>Full report (Markdown), with the regression table by category</summary>
<pre>{e(markdown_body)}</pre></details>
</body></html>
"""


def _signoff_html(signoff: dict, current_hash: str) -> str:
    # A signer must see whether their signature covers these figures or an earlier version.
    e = html.escape
    same = signoff["report_hash"] == current_hash
    which = "this report" if same else "an earlier version: the figures changed after signing"
    return (
        f"<li><b>{e(signoff['decision'].upper())}</b> by {e(signoff['signer'])} at "
        f"{e(signoff['created_at'])}: {e(signoff['comment'])}<br><small>signed report hash "
        f"<code>{e(signoff['report_hash'])}</code> ({which})</small></li>"
    )


def win_rate_svg(win_rates: list[dict]) -> str:
    """Horizontal bars with CI whiskers, one per (comparison, source), 0.5 marked."""
    rows = [w for w in win_rates if w["value"] is not None]
    if not rows:
        return "<p>No win rates yet.</p>"
    width, left, bar_h, gap = 960, 420, 18, 10
    height = len(rows) * (bar_h + gap) + 30
    scale = (width - left - 20) / 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="win rates with 95% confidence intervals">'
    ]
    for i, w in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        label = html.escape(f"{w['system_a']} vs {w['system_b']} · {w['source']} (n={w['n']})")
        color = "#3b6fb6" if w["source"] == HUMANS else "#8a9bb5"
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{label}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{w["value"] * scale:.1f}" height="{bar_h}" '
            f'fill="{color}"><title>{w["value"]:.3f}</title></rect>'
        )
        if w["ci"]:
            lo, hi = (left + c * scale for c in w["ci"])
            mid = y + bar_h / 2
            parts.append(
                f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{mid}" y2="{mid}" stroke="#111" '
                'stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{left + w["value"] * scale + 4:.1f}" y="{y + 13}" font-size="11">'
            f"{w['value']:.2f}</text>"
        )
    half = left + 0.5 * scale
    parts.append(
        f'<line x1="{half}" x2="{half}" y1="0" y2="{height - 20}" stroke="#c62828" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="{half - 10}" y="{height - 5}" font-size="11">0.5</text></svg>')
    return "".join(parts)


# ---- results: regression and error analysis ----

PROMPT_BUCKETS = ((0, 200, "short prompt (< 200 chars)"), (200, 600, "medium prompt (200-600)"))
PROMPT_BUCKETS += ((600, None, "long prompt (> 600)"),)
OUTPUT_BUCKETS = ((0, 300, "short output (< 300 chars)"), (300, 1000, "medium output (300-1000)"))
OUTPUT_BUCKETS += ((1000, None, "long output (> 1000)"),)


def regression_table(inputs: GateInputs, comparisons: list[tuple[str, str]]) -> list[dict]:
    """Per category and comparison: win rate of system_a, and its distance from parity in points
    (negative = system_a is worse than system_b there), from humans and from each real judge
    (baselines say nothing about regressions)."""
    rows = []
    for category, rates in sorted(inputs.category_win_rates.items()):
        for w in rates:
            if (w.system_a, w.system_b) not in comparisons or w.source.startswith(
                stats.BASELINE_PREFIX
            ):
                continue
            rows.append(
                {
                    "category": category,
                    "system_a": w.system_a,
                    "system_b": w.system_b,
                    "source": w.source,
                    "value": w.value,
                    "ci": list(w.ci) if w.ci else None,
                    "n": w.n,
                    "delta_points": None if w.value is None else round(100 * (w.value - 0.5), 2),
                }
            )
    return rows


def _candidate_outcomes(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """One row per human vote on a pair with the candidate: its result (win/tie/loss/both_bad)."""
    involved = pairs[(pairs.system_x == candidate) | (pairs.system_y == candidate)]
    merged = votes.merge(involved, on="pair_id")
    if merged.empty:
        return merged.assign(result=[], len_candidate=[])
    side = merged.system_x.eq(candidate).map({True: "x", False: "y"})
    result = merged.outcome.where(merged.outcome.isin(["tie", "both_bad"]), None)
    result = result.where(result.notna(), merged.outcome.eq(side).map({True: "win", False: "loss"}))
    len_candidate = merged.len_x.where(side == "x", merged.len_y)
    return merged.assign(result=result, len_candidate=len_candidate)


def _bucket(value: int, buckets) -> str:
    for low, high, label in buckets:
        if value >= low and (high is None or value < high):
            return label
    return buckets[-1][2]


def length_breakdown(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> list[dict]:
    """Human outcomes of the candidate by prompt-length and by its output-length bucket."""
    outcomes = _candidate_outcomes(pairs, votes, candidate)
    rows = []
    for dimension, column, buckets in (
        ("prompt length", "len_prompt", PROMPT_BUCKETS),
        ("output length", "len_candidate", OUTPUT_BUCKETS),
    ):
        labels = [_bucket(int(v), buckets) for v in outcomes[column]] if len(outcomes) else []
        for _, _, label in buckets:
            mask = [lab == label for lab in labels]
            results = outcomes.result[mask] if len(outcomes) else pd.Series(dtype=object)
            n = len(results)
            counts = {k: int((results == k).sum()) for k in ("win", "tie", "both_bad", "loss")}
            score = counts["win"] + 0.5 * (counts["tie"] + counts["both_bad"])
            rows.append(
                {
                    "dimension": dimension,
                    "bucket": label,
                    "n": n,
                    **counts,
                    "win_rate": score / n if n else None,
                }
            )
    return rows


def candidate_losses(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> list[dict]:
    """Comparisons whose human majority prefers the other system, with both outputs."""
    majority = stats.majority_labels(pairs, votes)
    rationales = votes.groupby("pair_id")["rationale"].apply(
        lambda s: [r for r in s if isinstance(r, str) and r.strip()]
    )
    out = []
    for p in pairs.itertuples():
        if candidate not in (p.system_x, p.system_y) or p.pair_id not in majority.index:
            continue
        side = "x" if p.system_x == candidate else "y"
        label = majority[p.pair_id]
        if label in ("tie", side):
            continue
        out.append(
            {
                "pair_id": int(p.pair_id),
                "category": p.category,
                "item_id": p.item_key,
                "opponent": p.system_y if side == "x" else p.system_x,
                "prompt": p.prompt,
                "candidate_output": p.output_x if side == "x" else p.output_y,
                "opponent_output": p.output_y if side == "x" else p.output_x,
                "rationales": list(rationales.get(p.pair_id, [])),
            }
        )
    return sorted(out, key=lambda r: (r["category"], r["item_id"], r["opponent"]))


def judge_preference(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, candidate: str
) -> dict[str, float]:
    """item_id -> how strongly real (non-baseline) judges preferred the candidate there: the mean
    of 1 (candidate won), 0.5 (tie), 0 (lost) over its parsed verdicts."""
    if verdicts.empty:
        return {}
    real = verdicts[~verdicts.judge.astype(str).str.startswith(stats.BASELINE_PREFIX)]
    merged = real[real.outcome.notna()].merge(pairs, on="pair_id")
    merged = merged[(merged.system_x == candidate) | (merged.system_y == candidate)]
    if merged.empty:
        return {}
    side = merged.system_x.eq(candidate).map({True: "x", False: "y"})
    points = merged.outcome.eq(side).astype(float) + 0.5 * merged.outcome.eq("tie")
    return points.groupby(merged.item_key).mean().to_dict()
