"""The sign-off report as a reader sees it: Markdown, self-contained HTML or JSON, its hashes
(of the figures a sign-off pins, and of everything it shows), what changed between two
versions, and the one way the app writes a confidence interval. Pure functions over the report dict
that the sign-off service builds; what the numbers mean is decided in gate.py and stats.py."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import asdict
from typing import Any

from review_app import stats
from review_app.errors import InputError
from review_app.safe_markdown import escape_markdown


def format_ci(ci: Any, digits: int = 2) -> str:
    """A confidence interval as "[low, high]" with `digits` decimals, or "n/a" when there is none
    (None, an empty cell of a table, anything that is not a pair)."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "n/a"
    low, high = ci
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def win_rate_json(w: stats.WinRate) -> dict:
    """A win rate as the report and the trend table store it (the CI as a list)."""
    return asdict(w) | {"ci": list(w.ci) if w.ci else None}


# What a report shows beyond the figures a signer signs: when it was made, its sign-offs, the
# audit entry that includes them, and its own hashes and signature.
_BEYOND_FIGURES = ("generated_at", "signoffs", "audit_head", "report_hash", "document_hash")


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def report_hash(report: dict) -> str:
    """Hash of a report's figures, what a sign-off pins: everything except when it was
    generated, its sign-offs (signing must not change what was signed) and its signature."""
    return _digest({k: v for k, v in report.items() if k not in (*_BEYOND_FIGURES, "signature")})


def document_hash(report: dict) -> str:
    """Hash of everything a report shows, sign-offs and when it was generated included: the
    signature covers this one, so no line of a signed report can be edited unseen."""
    return _digest({k: v for k, v in report.items() if k not in ("document_hash", "signature")})


# The parts of a report a signer reads first, in the order `differences` names them.
_FIRST = ("gate", "exclusions", "deviations", "thresholds", "final_review", "looks", "win_rates")


def differences(before: dict, after: dict, limit: int = 8) -> list[str]:
    """What changed in a report's figures between two versions, one line per changed part in
    the order a signer reads them: a value (`gate.result: pass -> fail`), entries added to or
    gone from a list (`exclusions: 0 -> 1 entries, added example-ana ...`), or how many values
    of a larger part changed; at most `limit` lines."""
    old = {k: v for k, v in before.items() if k not in (*_BEYOND_FIGURES, "signature")}
    new = {k: v for k, v in after.items() if k not in (*_BEYOND_FIGURES, "signature")}
    parts = sorted(
        (k for k in set(old) | set(new) if old.get(k) != new.get(k)),
        # The audit head changes with any of the others: named last.
        key=lambda k: (_FIRST.index(k) if k in _FIRST else len(_FIRST) + (k == "audit"), k),
    )
    lines = []
    for part in parts:
        a, b = old.get(part), new.get(part)
        if isinstance(a, list) and isinstance(b, list) and len(a) != len(b):
            added = [x for x in b if x not in a]
            lines.append(
                f"{part}: {len(a)} -> {len(b)} entries"
                + (f", added {_short(_brief(added[0]))}" if added else "")
            )
            continue
        was, now = _leaves(a, part), _leaves(b, part)
        changed = [p for p in sorted(set(was) | set(now)) if was.get(p) != now.get(p)]
        if len(changed) <= 2:
            lines += [
                f"{p}: {_short(was.get(p, 'none'))} -> {_short(now.get(p, 'none'))}"
                for p in changed
            ]
        else:
            lines.append(f"{part}: {len(changed)} values changed")
    if len(lines) > limit:
        lines = [*lines[:limit], f"and {len(lines) - limit} more changed parts"]
    return lines


def _brief(value: Any) -> Any:
    """A list entry as one short phrase: its values, without their keys."""
    if isinstance(value, dict):
        return " ".join(str(v) for v in value.values() if v not in (None, ""))
    return value


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, inner in value.items():
            found |= _leaves(inner, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        found = {}
        for i, inner in enumerate(value):
            found |= _leaves(inner, f"{path}[{i}]")
        return found
    return {path: value}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ---- small formatting helpers ----

# Estimates in the report carry three decimals, so their intervals do too.
_DIGITS = 3


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.{_DIGITS}f}"


def length_controlled_text(row: dict) -> str:
    """A scorecard win-rate row's length-controlled win rate as shown: the number, or in its
    place why there is none (lengths that do not overlap)."""
    if row.get("lc_win_rate") is None:
        return row.get("lc_reason") or "n/a"
    return _number(row["lc_win_rate"])


def _value(est: dict) -> str:
    return _number(est["value"])


def _ci(ci: Any) -> str:
    return format_ci(ci, digits=_DIGITS)


def _value_ci(est: dict) -> str:
    """An estimate with its 95% interval ("0.75 [0.61, 0.87]"); one too small to have an
    interval says so rather than standing alone as if it were certain."""
    if est["value"] is None:
        return "n/a"
    if not est.get("ci"):
        return f"{_value(est)} (no interval)"
    return f"{_value(est)} {_ci(est['ci'])}"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _md(text: Any) -> str:
    """A name or comment as literal text on one Markdown line (table cells included): nothing in
    it can become a link, an image the reader's browser fetches, or a broken table."""
    return escape_markdown(" ".join(str(text).splitlines()))


# ---- the regression table ----

# Every screen and the report explain the one regression table (`gate.regression_table`) alike.
REGRESSION_NOTE = (
    "Per category and source: the first system's win rate over the second (the candidate comes "
    "first) and its change in points, 100 x (win rate - 0.5), with the 95% CI (negative: worse "
    "there); n counts comparisons. The outcome is the gate's for that suite under the locked "
    "max_regression_points threshold covering the row, whose margin is shown: fail when the "
    "change's one-sided 95% bound shows it below -margin, pass when it shows it above, else "
    "inconclusive (also below the lock's minimum n); the reason quotes the gate's bound on the "
    "drop below parity, which is -change. No threshold: none covers the row, so its change is "
    "shown, not decided."
)
# The outcome cell of a row no locked regression threshold decides.
NO_THRESHOLD = "no threshold"


def regression_rows(rows: list[dict], comparison: bool = True) -> list[dict]:
    """The regression table as screens and the report lay it out: one dict per row, numbers
    kept as numbers (the CI and the margin as text), the outcome in the gate's words."""
    out = []
    for r in rows:
        row = {"category": r["category"]}
        if comparison:
            row["comparison"] = f"{r['system_a']} vs {r['system_b']}"
        out.append(
            row
            | {
                "source": r["source"],
                "win rate": r["win_rate"],
                "change (points)": r["change_points"],
                "95% CI (points)": format_ci(r["change_ci"], digits=1),
                "n": r["n"],
                # A row no threshold covers has no margin and no reason: a dash says so (an
                # empty cell of a screen's table is drawn as "None").
                "margin (points)": "-" if r["margin"] is None else f"{r['margin']:g}",
                "outcome": r["outcome"] or NO_THRESHOLD,
                "reason": "-" if r["outcome"] is None else r["reason"],
            }
        )
    return out


def _regression_markdown(rows: list[dict], comparison: bool = True) -> list[str]:
    """The regression table in Markdown, cells as on the screens."""
    shown = regression_rows(rows, comparison)
    if not shown:
        return []
    columns = list(shown[0])
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in shown:
        cells = {
            **r,
            **{k: _md(r[k]) for k in ("category", "comparison", "source", "reason") if k in r},
            "win rate": _number(r["win rate"]),
            "change (points)": _points(r["change (points)"]),
            "n": str(r["n"]),
        }
        lines.append("| " + " | ".join(cells[c] for c in columns) + " |")
    return lines


# ---- the scorecard ----


def format_mean(value: float | None, ci: Any, digits: int = 2) -> str:
    """A mean or rate with its CI in brackets, e.g. "4.10 [3.92, 4.28]"; "n/a" without one."""
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return text if ci is None else f"{text} {format_ci(ci, digits)}"


def scorecard_rows(card: dict) -> list[dict]:
    """The scorecard as the guides lay it out: one row per metric and source, one column per
    system (mean or rate with its 95% CI), over all categories."""
    systems = card["systems"]
    rows: dict[tuple[str, str], dict] = {}

    def cell(metric: str, source: str, system: str, text: str) -> None:
        row = rows.setdefault((metric, source), {"metric": metric, "source": source})
        row[system] = text

    for g in card["graders"]:
        if g.get("category") is None:
            ci = [100 * c for c in g["ci"]] if g.get("ci") else None
            rate = None if g.get("rate") is None else 100 * g["rate"]
            cell(f"{g['check']} (% passed)", "graders", g["system"], format_mean(rate, ci, 0))
    for c in card["criteria"]:
        if c["category"] is None:
            cell(
                f"{c['criterion']} (mean 1-5)",
                c["source"],
                c["system"],
                format_mean(c["mean"], c["ci"], 2),
            )
    for source, ratings in card["ranking"].items():
        for r in ratings:
            cell("Bradley-Terry rating", source, r["system"], format_mean(r["rating"], r["ci"], 0))
    return [
        {"metric": r["metric"], "source": r["source"]} | {s: r.get(s, "") for s in systems}
        for r in rows.values()
    ]


def scorecard_markdown(card: dict) -> list[str]:
    """The scorecard's Markdown section (the report's, and `review-app scorecard`'s text)."""
    systems = card["systems"]
    lines = ["## Scorecard", ""]
    visible = card.get("outcomes_visible", True)
    rows = scorecard_rows(card)
    if not visible:
        lines.append(f"Withheld: {_md(card.get('withheld', ''))}.")
        if not rows:
            return lines
        lines += ["", "Grader pass rates (not outcomes) with their 95% CI:"]
    else:
        lines.append(
            "Per system over all categories: means of 1-5 ratings, pass rates and Bradley-Terry "
            "ratings (Elo scale, mean 1000), each with its 95% bootstrap CI over items."
        )
    lines += ["", "| metric | source | " + " | ".join(_md(s) for s in systems) + " |"]
    lines.append("|---" * (len(systems) + 2) + "|")
    for row in rows:
        cells = [_md(row["metric"]), _md(row["source"]), *(row[s] for s in systems)]
        lines.append("| " + " | ".join(cells) + " |")
    if not visible:
        return lines
    for source, ratings in card["ranking"].items():
        for note in rating_notes(ratings):
            lines += ["", f"{_md(source)}: {_md(note)}"]
    if card["reference_share"]:
        lines += [
            "",
            f"{_md(card['candidate'])} as a share of {_md(card['reference'])}: "
            + "; ".join(
                f"{_md(r['criterion'])} ({_md(r['source'])}) {_share(r['share'])}"
                for r in card["reference_share"]
            )
            + ".",
        ]
    lines += ["", "### Win rates, raw and length-controlled", ""]
    lines.append("| comparison | source | win rate | 95% CI | length-controlled | 95% CI | n |")
    lines.append("|---|---|---|---|---|---|---|")
    for w in card["win_rates"]:
        lines.append(
            f"| {_md(w['system_a'])} vs {_md(w['system_b'])} | {_md(w['source'])} | "
            f"{_number(w['win_rate'])} | {_ci(w['ci'])} | {_md(length_controlled_text(w))} | "
            f"{_ci(w['lc_ci'])} | {w['n']} |"
        )
    if card["regression"]:
        lines += ["", f"### Regression table: {_md(card['candidate'])} vs {_md(card['base'])}", ""]
        lines += [REGRESSION_NOTE, "", *_regression_markdown(card["regression"], False)]
    return lines


def rating_notes(ratings: list[dict]) -> list[str]:
    """What a reader must know before comparing these Bradley-Terry ratings (plain text)."""
    notes = []
    unbeaten = [r["system"] for r in ratings if r["unbeaten"]]
    if unbeaten:
        notes.append(
            f"{', '.join(unbeaten)} won every comparison; the rating stays finite only through "
            "the small virtual tie every two systems get, so read it as a lower bound."
        )
    groups: dict[int, list[str]] = {}
    for r in ratings:
        groups.setdefault(r.get("group", 0), []).append(r["system"])
    if len(groups) > 1:
        listed = " | ".join(", ".join(groups[g]) for g in sorted(groups))
        notes.append(
            f"no chain of comparisons links these groups: {listed}. Ratings rank only within "
            "a group; across groups they are placed by the virtual ties alone and say nothing."
        )
    return notes


def scorecard_html(card: dict) -> str:
    """The scorecard's table and the length-controlled win rates as HTML."""
    e = html.escape
    if not card.get("outcomes_visible", True):
        return f"<p class='note'>Withheld: {e(card.get('withheld', ''))}.</p>"
    systems = card["systems"]
    head = "".join(f"<th>{e(s)}</th>" for s in systems)
    body = "".join(
        f"<tr><td>{e(r['metric'])}</td><td>{e(r['source'])}</td>"
        + "".join(f"<td>{e(r[s])}</td>" for s in systems)
        + "</tr>"
        for r in scorecard_rows(card)
    )
    rates = "".join(
        f"<tr><td>{e(w['system_a'])} vs {e(w['system_b'])}</td><td>{e(w['source'])}</td>"
        f"<td>{_number(w['win_rate'])} {_ci(w['ci'])}</td>"
        f"<td>{e(length_controlled_text(w))}"
        f"{' ' + _ci(w['lc_ci']) if w['lc_ci'] else ''}</td><td>{w['n']}</td></tr>"
        for w in card["win_rates"]
    )
    notes = "".join(
        f"<p class='note'>{e(source)}: {e(note)}</p>"
        for source, ratings in card["ranking"].items()
        for note in rating_notes(ratings)
    )
    return (
        "<p class='note'>Per system over all categories, with 95% bootstrap CIs over items; "
        "Bradley-Terry ratings on the Elo scale (mean 1000).</p>"
        f"<table><tr><th>metric</th><th>source</th>{head}</tr>{body}</table>{notes}"
        "<table><tr><th>comparison</th><th>source</th><th>win rate</th>"
        f"<th>length-controlled</th><th>n</th></tr>{rates}</table>"
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


# ---- Markdown ----


def eval_set_changed(es: dict) -> str:
    """A warning when the eval set's items hash differently now than when it was frozen."""
    frozen = es.get("frozen_hash")
    if not frozen or frozen == es["content_hash"]:
        return ""
    return f" (NOT the hash frozen when the study was created, {frozen}: the items were edited)"


def render_markdown(report: dict) -> str:
    lines = [f"# Ship decision report: study {_md(report['study'])}", ""]
    es = report["eval_set"]
    lines += [
        f"- Eval set: **{_md(es['name'])}** ({es['n_items']} items), hash `{es['content_hash']}`"
        + _md(eval_set_changed(es)),
        f"- Comparisons: {', '.join(f'{_md(a)} vs {_md(b)}' for a, b in report['comparisons'])}",
        f"- Candidate: **{_md(report['candidate'])}**",
        f"- Report hash: `{report['report_hash']}`",
        f"- Generated: {report['generated_at']}",
        "",
        f"## Gate: {gate_headline(report['gate'])}",
        "",
    ]
    lines += [f"**{_md(text)}**" for text in override_lines(report["signoffs"])]
    lines += [f"**{_md(text)}**" for text in link_lines(report)]
    th = report["thresholds"]
    if th["locked_at"]:
        lines.append(
            f"Thresholds locked by {_md(th['locked_by'])} at {th['locked_at']} "
            f"(hash `{th['content_hash']}`), candidate "
            f"{_md(th.get('candidate') or report['candidate'])}; "
            f"each threshold needs {report['gate']['min_items']} items and is decided "
            "on its one-sided 95% confidence bound."
        )
        if design_line(report):
            lines.append(design_line(report))
        if sequential_line(report):
            lines.append(sequential_line(report))
        if looks_line(report):
            lines.append(f"**Locked {looks_line(report)}.**")
        lines.append(sources_line(report))
    lines += [
        "",
        "| threshold | estimate | two-sided 95% CI | n | outcome | reason (decided on the one-sided bound) |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["gate"]["thresholds"]:
        lines.append(
            f"| {_md(r['description'])} | {_number(r['estimate'])} | {_ci(r['ci'])} | {r['n']} | "
            f"{r['outcome'].upper() if r['outcome'] == 'fail' else r['outcome']} | "
            f"{_md(r['reason'])} |"
        )
    if report.get("looks"):
        lines += ["", "### Looks before the planned sample was in", ""]
        lines += [f"- {_md(text)}" for text in look_lines(report)]
    if seen_lines(report):
        lines += ["", "### Seen before the lock", ""]
        lines += [f"- {_md(text)}" for text in seen_lines(report)]
    if report["deviations"]:
        lines += ["", "### Deviations after the lock", ""]
        for d in report["deviations"]:
            lines.append(
                f"- {d['changed_at']} by {_md(d['changed_by'])}: {_md(d['before'])} -> "
                f"{_md(d['after'])}. Reason: {_md(d['reason'] or '(none given)')}"
            )
    lines += ["", "## Win rates", "", "| comparison | source | win rate | 95% CI | n |"]
    lines.append("|---|---|---|---|---|")
    for w in report["win_rates"]:
        lines.append(
            f"| {_md(w['system_a'])} vs {_md(w['system_b'])} | {_md(w['source'])} | "
            f"{_number(w['value'])} | "
            f"{_ci(w['ci'])} | {w['n']} |"
        )
    if prediction_powered_lines(report):
        lines += ["", "### Prediction-powered win rates", "", PPI_NOTE, ""]
        lines += [f"- {_md(text)}" for text in prediction_powered_lines(report)]
    lines += ["", "## Regression by category", "", REGRESSION_NOTE, ""]
    lines += _regression_markdown(report["regression"]) or ["No outcomes per category yet."]
    lines += grader_lines(report)
    if report.get("scorecard"):
        lines += ["", *scorecard_markdown(report["scorecard"])]
    lines += [
        "",
        "## Judges",
        "",
        "| judge | rubric hash | verdicts | agreement (no ties, 95% CI) | n |",
    ]
    lines.append("|---|---|---|---|---|")
    for j in report["judges"]:
        agree = j["agreement_without_ties"]
        lines.append(
            f"| {_md(j['judge'])} | `{j['rubric_hash'] or '-'}` | {j['n_verdicts']} | "
            f"{_value_ci(agree)} | {agree['n']} |"
        )
    humans = report["human_agreement"]
    lines += [
        "",
        f"Human-human agreement without ties: {_value_ci(humans['without_ties'])} "
        f"(n={humans['without_ties']['n']}); with ties: {_value_ci(humans['with_ties'])} "
        f"(n={humans['with_ties']['n']}).",
    ]
    lines += self_preference_lines(report)
    lines += ["", "## Reviewers excluded from the statistics", ""]
    exclusions = report.get("exclusions", [])
    if not exclusions:
        lines.append("None: every reviewer's votes count.")
    for x in exclusions:
        lines.append(
            f"- {_md(x['reviewer'])} ({x['n_votes']} votes left out), excluded by "
            f"{_md(x['decided_by'])} at {x['created_at']}. Reason: {_md(x['reason'])}"
        )
    fr = report["final_review"]
    lines += ["", "## Final human review", ""]
    lines.append(
        f"{fr['acceptable']} of {fr['n']} reviewed outputs of {_md(fr['system'])} acceptable "
        f"({fr['n']} of the {fr['sample_size']}-output sample reviewed)."
    )
    for item in fr["rejected"]:
        lines.append(
            f"- not acceptable: {_md(item['item_id'])}: {_md(item['comment'] or '(no comment)')}"
        )
    lines += ["", "## Sign-off", ""]
    if not report["signoffs"]:
        lines.append("Not signed yet.")
    for s in report["signoffs"]:
        override = (
            f" OVERRIDE of a {s['gate_result']} gate: {_md(s['override'])}."
            if s.get("override")
            else ""
        )
        lines.append(
            f"- **{s['decision'].upper()}** by {_md(s['signer'])} at {s['created_at']} "
            f"(report hash `{s['report_hash']}`; {_md(link_text(s))}): "
            f"{_md(s['comment'])}.{override}"
        )
    return "\n".join(lines) + "\n"


SELF_PREFERENCE_NOTE = (
    "A judge may favour outputs of its own model family. For each judge and each compared system "
    "of the same family (families from the names, overridden by REVIEW_APP_MODEL_FAMILIES): how "
    "much more often the judge picks that system than the humans do on the same comparisons "
    "against other families (a tie counts half), with a paired 95% CI; flagged when the CI "
    "excludes 0."
)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def self_preference_lines(report: dict) -> list[str]:
    """The self-preference section of the Markdown report (absent from reports built before it
    existed)."""
    if "self_preference" not in report:
        return []
    lines = ["", "## Self-preference", "", SELF_PREFERENCE_NOTE, ""]
    found = report["self_preference"]
    if not found:
        lines.append("No judge shares a model family with a compared system: nothing to check.")
        return lines
    lines += [
        "| judge | system (same family) | judge win rate | human win rate | shift | 95% CI | n "
        "| flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in found:
        shift = p["shift"]
        lines.append(
            f"| {_md(p['judge'])} | {_md(p['system'])} | {_rate(p['judge_win_rate'])} | "
            f"{_rate(p['human_win_rate'])} | {_number(shift['value'])} | {_ci(shift['ci'])} | "
            f"{shift['n']} | {'**FLAGGED**' if p['flagged'] else 'no'} |"
        )
    return lines


def self_preference_html(report: dict) -> str:
    if "self_preference" not in report:
        return ""
    e = html.escape
    found = report["self_preference"]
    if not found:
        body = (
            "<p class='note'>No judge shares a model family with a compared system: nothing to "
            "check.</p>"
        )
    else:
        rows = "".join(
            f"<tr class='{'fail' if p['flagged'] else ''}'><td>{e(p['judge'])}</td>"
            f"<td>{e(p['system'])}</td><td>{_rate(p['judge_win_rate'])}</td>"
            f"<td>{_rate(p['human_win_rate'])}</td><td>{_number(p['shift']['value'])}</td>"
            f"<td>{_ci(p['shift']['ci'])}</td><td>{p['shift']['n']}</td>"
            f"<td>{'FLAGGED' if p['flagged'] else 'no'}</td></tr>"
            for p in found
        )
        body = (
            "<table><tr><th>judge</th><th>system (same family)</th><th>judge win rate</th>"
            "<th>human win rate</th><th>shift</th><th>95% CI</th><th>n</th><th>flagged</th></tr>"
            f"{rows}</table>"
        )
    return f"<h2>Self-preference</h2>\n<p class='note'>{e(SELF_PREFERENCE_NOTE)}</p>\n{body}"


def _pinned(version: dict) -> str:
    return "pinned by the lock" if version["pinned"] else "not pinned by the lock"


def _grader_rows(graded: dict) -> list[dict]:
    """The pass-rate rows worth a line: a check's per-category rows only when it covers more than
    one category (with one, its row repeats the overall one)."""
    categories: dict[tuple, int] = {}
    for r in graded["graders"]:
        if r["category"] is not None:
            key = (r["grader"], r["check"], r["system"])
            categories[key] = categories.get(key, 0) + 1
    return [
        r
        for r in graded["graders"]
        if r["category"] is None or categories[(r["grader"], r["check"], r["system"])] > 1
    ]


def grader_lines(report: dict) -> list[str]:
    """The graders section (Markdown): pass rates per check, system and category with Wilson
    95% CIs, accuracy and macro-F1 of choice checks; nothing when no grader has run."""
    graded = report.get("graders")
    if not graded:
        return []
    lines = ["", "## Graders", ""]
    lines += [
        f"- {_md(v['name'])} `{v['content_hash'][:12]}`: {_pinned(v)}" for v in graded["versions"]
    ]
    lines += [
        "",
        "| grader | check | system | category | passed | n | pass rate | 95% CI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in _grader_rows(graded):
        lines.append(
            f"| {_md(r['grader'])} | {_md(r['check'])} | {_md(r['system'])} | "
            f"{_md(r['category'] or 'all')} | {r['passed']} | {r['n']} | {_number(r['rate'])} | "
            f"{_ci(r['ci'])} |"
        )
    if graded["choice"]:
        lines += [
            "",
            "| grader | check | system | accuracy | 95% CI | macro-F1 | n |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in graded["choice"]:
            lines.append(
                f"| {_md(r['grader'])} | {_md(r['check'])} | {_md(r['system'])} | "
                f"{_number(r['accuracy'])} | {_ci(r['accuracy_ci'])} | {_number(r['macro_f1'])} | "
                f"{r['n']} |"
            )
    return lines


def graders_html(report: dict) -> str:
    """The graders section (HTML), or "" when no grader has run."""
    graded = report.get("graders")
    if not graded:
        return ""
    e = html.escape
    versions = "".join(
        f"<li>{e(v['name'])} <code>{e(v['content_hash'][:12])}</code>: {_pinned(v)}</li>"
        for v in graded["versions"]
    )
    rows = "".join(
        f"<tr><td>{e(r['grader'])}</td><td>{e(r['check'])}</td><td>{e(r['system'])}</td>"
        f"<td>{e(r['category'] or 'all')}</td><td>{r['passed']} / {r['n']}</td>"
        f"<td>{_number(r['rate'])}</td><td>{_ci(r['ci'])}</td></tr>"
        for r in _grader_rows(graded)
    )
    choice = "".join(
        f"<tr><td>{e(r['grader'])}</td><td>{e(r['check'])}</td><td>{e(r['system'])}</td>"
        f"<td>{_number(r['accuracy'])}</td><td>{_ci(r['accuracy_ci'])}</td>"
        f"<td>{_number(r['macro_f1'])}</td><td>{r['n']}</td></tr>"
        for r in graded["choice"]
    )
    if choice:
        choice = (
            "<table><tr><th>grader</th><th>check</th><th>system</th><th>accuracy</th>"
            f"<th>95% CI</th><th>macro-F1</th><th>n</th></tr>{choice}</table>"
        )
    return (
        "<h2>Graders</h2><p class='note'>Share of outputs passing each deterministic check, with "
        f"its Wilson 95% interval.</p><ul>{versions}</ul>"
        "<table><tr><th>grader</th><th>check</th><th>system</th><th>category</th>"
        f"<th>passed</th><th>pass rate</th><th>95% CI</th></tr>{rows}</table>{choice}"
    )


def looks_line(report: dict) -> str:
    """What of the outcomes could be seen before this lock (another study's, on the same eval
    set and systems), or "" when nothing could."""
    looks = report.get("looks_before_lock") or []
    if not looks:
        return ""
    named = "; ".join(
        f"study {look['study']} (locked {look['locked_at']}, {' vs '.join(look['systems'])})"
        for look in looks
    )
    return f"after the outcomes of the same systems on this eval set were visible through {named}"


def sources_line(report: dict) -> str:
    counts = report.get("votes_by_source") or {}
    return (
        "Vote rows by source: "
        + (", ".join(f"{source} {n}" for source, n in counts.items()) or "none")
        + "."
    )


def gate_headline(gate: dict) -> str:
    """The gate's result in words, e.g. "INCONCLUSIVE (interim: 22 of 128 comparisons ...)"."""
    counts = {o: sum(t["outcome"] == o for t in gate["thresholds"]) for o in OUTCOME_WORDS}
    text = (
        gate["result"].upper() + " · " + ", ".join(f"{n} {word}" for word, n in counts.items() if n)
    )
    planned = gate.get("planned")
    if gate.get("interim") and planned:
        text += (
            f" · interim: {planned['reached']} of {planned['comparisons']} comparisons have their "
            f"{planned['votes_per_comparison']} votes, {planned['final_review']['reached']} of "
            f"{planned['final_review']['planned']} final-review outputs marked"
        )
    return text


OUTCOME_WORDS = ("pass", "fail", "inconclusive", "interim")


PPI_NOTE = (
    "A judge's verdicts on every comparison, corrected by the human votes on the comparisons "
    "humans saw (prediction-powered inference, PPI++): valid however biased the judge is, "
    "narrower when it predicts the humans well. Votes on the dev split (what a rubric was tuned "
    "on) do not correct it."
)


def design_line(report: dict) -> str:
    """The design the lock recorded and its power at the expected truth, or "" for a lock made
    before designs were recorded."""
    design = report.get("design") or {}
    if design.get("power") is None:
        return ""
    text = (
        f"Locked design: {design['votes_per_comparison']} vote(s) on each of "
        f"{design['comparisons']} comparisons, a final review of {design['final_review']} "
        f"outputs; chance that every threshold passes at the expected truth: "
        f"{design['power']:.0%}."
    )
    if design.get("low_power_reason"):
        text += f" Locked under 50% power because: {design['low_power_reason']}"
    return text


def seen_lines(report: dict) -> list[str]:
    """One line per shadow study (another study over the same eval-set content) and per
    recorded look before the lock at figures that can stand in for the outcomes."""
    seen = report.get("seen_before_lock") or {}
    out = []
    for shadow in seen.get("shadow_studies") or []:
        state = f"locked {shadow['locked_at']}" if shadow["locked_at"] else "not locked"
        out.append(
            f"shadow study {shadow['study']} over eval set {shadow['eval_set']} (same content), "
            f"created {shadow['created_at']}, {state}: {' vs '.join(shadow['systems'])}"
        )
    for look in seen.get("looks") or []:
        shown = "; ".join(_seen_figure(f) for f in look["figures"])
        out.append(
            f"{look['at']} by {look['actor']} (study {look['study']}): {look['what']}: {shown}"
        )
    return out


def _seen_figure(figure: dict) -> str:
    if "judge" in figure:
        with_ties = figure["agreement_with_ties"]
        return (
            f"{figure['judge']} agreement {_number(with_ties.get('value'))} "
            f"(n={with_ties.get('n')}; {figure['why']})"
        )
    accuracy = figure["known_answer_accuracy"]
    return f"{figure['reviewer']} {_number(accuracy.get('value'))} (n={accuracy.get('n')})"


def look_lines(report: dict) -> list[str]:
    """One line per recorded look at outcomes before the planned sample was in, with the
    sequential design's boundary there and the alpha spent by then."""
    out = []
    for look in report.get("looks") or []:
        shown = "; ".join(
            f"{f['threshold']}: {_number(f['estimate'])}"
            + (f" (bounds {_ci(f['bounds'])})" if f.get("bounds") else "")
            for f in look["figures"]
        )
        plan = look.get("plan") or {}
        boundary = look.get("look")
        where = (
            f"; look {boundary['look']}, boundary z = {boundary['boundary']:.2f}, alpha spent "
            f"{boundary['alpha_spent']:.4f}"
            if boundary
            else ""
        )
        concluded = (
            f"; concluded early: {look['result'].upper()}"
            if look.get("result") in ("pass", "fail")
            else ""
        )
        out.append(
            f"{look['at']} by {look['actor']}, {plan.get('reached', '?')} of "
            f"{plan.get('comparisons', '?')} comparisons in{where}{concluded}: "
            f"{shown or 'no threshold'}"
        )
    return out


def sequential_line(report: dict) -> str:
    """The sequential design the lock recorded, or "" for a lock without one."""
    design = (report.get("design") or {}).get("sequential")
    if not design:
        return ""
    return (
        f"Sequential design: {design['method']}, one-sided alpha {design['alpha']:g} spent over "
        f"the information fraction ({design['information']}): a look may conclude early when its "
        "boundary is crossed; without interim looks the final boundary is the fixed design's."
    )


def prediction_powered_table(rows: list[dict]) -> list[dict]:
    """The prediction-powered win rates as the screens lay them out, one row per comparison and
    judge, the humans-only estimate beside it."""
    return [
        {
            "comparison": f"{row['system_a']} vs {row['system_b']}",
            "humans only": _number(row["humans"]["value"]),
            "with judge": _number(row["ppi"]["value"]),
            "judge": row["judge"],
            "humans 95% CI": _ci(row["humans"]["ci"]),
            "with judge 95% CI": _ci(row["ppi"]["ci"]),
            "voted": row["ppi"]["n_human"],
            "judged only": row["ppi"]["n_judge"],
            "worth (voted)": round(row["ppi"]["effective_n"]),
            "lambda": round(row["ppi"]["lambda"], 2),
            "decides": "a locked threshold" if row["pinned"] else "nothing (shown)",
        }
        for row in rows
    ]


def prediction_powered_lines(report: dict) -> list[str]:
    """The human win rates beside their prediction-powered estimates, one line per judge."""
    out = []
    for row in report.get("prediction_powered") or []:
        h, p = row["humans"], row["ppi"]
        decided = "decides a threshold" if row["pinned"] else "shown, not decided on"
        out.append(
            f"{row['system_a']} vs {row['system_b']}: humans {_number(h['value'])} "
            f"{_ci(h['ci'])} on {h['n_items']} items; with {row['judge']} "
            f"{_number(p['value'])} {_ci(p['ci'])} ({p['n_human']} items with votes, "
            f"{p['n_judge']} judged only, worth {p['effective_n']:.0f} voted items; "
            f"lambda {p['lambda']:.2f}; {decided})"
        )
    return out


_ISSUED = {
    "reviewer added": "created",
    "first admin added": "created",
    "link issued": "issued",
    "link reissued": "reissued",
}


def link_text(signoff: dict) -> str:
    """The link a sign-off was made with: its version, who created or reissued it and when."""
    link = signoff.get("link") or {}
    version = f"link version {link['version']}" if link.get("version") else "link"
    if link.get("by"):
        how = _ISSUED.get(link.get("action"), "issued")
        return f"{version}, {how} by {link['by']} at {link['at']}"
    if link.get("issued") is False:
        return f"{version}, never issued to {signoff['signer']} by the audit log"
    return f"{version}, issued before links were recorded"


def link_lines(report: dict) -> list[str]:
    """One line per sign-off made with a link the audit log never issued, or one created or
    reissued after the thresholds were locked: who handed the signer their link must not go
    unnoticed."""
    locked_at = (report.get("thresholds") or {}).get("locked_at") or ""
    lines = []
    for s in report["signoffs"]:
        link = s.get("link") or {}
        if link.get("issued") is False:
            lines.append(
                f"{s['decision'].upper()} by {s['signer']} at {s['created_at']} was made with a "
                "link the audit log never issued to them (a token put into the workspace file)"
            )
        elif link.get("by") and locked_at and link["at"] > locked_at:
            lines.append(
                f"{s['decision'].upper()} by {s['signer']} at {s['created_at']} was made with a "
                f"link {_ISSUED.get(link['action'], 'issued')} by {link['by']} at {link['at']}, "
                "after the thresholds were locked"
            )
    return lines


def override_lines(signoffs: list[dict]) -> list[str]:
    """One line per approval given over a gate that did not pass: it must not go unnoticed."""
    return [
        f"Approved by {s['signer']} at {s['created_at']} although the gate was "
        f"{s['gate_result']}; override reason: {s['override']}"
        for s in signoffs
        if s.get("override")
    ]


# ---- HTML ----


def render_html(report: dict) -> str:
    """A single self-contained HTML file: inline CSS and an inline SVG chart, nothing remote."""
    e = html.escape
    gate = report["gate"]
    rows = "".join(
        f"<tr class='{r['outcome']}'><td>{e(r['description'])}</td>"
        f"<td>{_number(r['estimate'])}</td>"
        f"<td>{_ci(r['ci'])}</td><td>{r['n']}</td>"
        f"<td>{e(r['outcome'])}</td><td>{e(r['reason'])}</td></tr>"
        for r in gate["thresholds"]
    )
    markdown_body = render_markdown(report)
    colour = {"pass": "#2e7d32", "fail": "#c62828"}.get(gate["result"], "#8a5a00")
    overrides = "".join(
        f"<p class='override'>{e(text)}</p>"
        for text in [*override_lines(report["signoffs"]), *link_lines(report)]
    )
    th = report["thresholds"]
    looks = looks_line(report)
    locked = (
        f"Locked by <b>{e(th['locked_by'])}</b> at {e(th['locked_at'])}, "
        + (
            f"<b class='override'>{e(looks)}</b>"
            if looks
            else "before the outcomes were visible in this workspace"
        )
        + f" (hash <code>{e(th['content_hash'][:16])}</code>). {e(sources_line(report))}"
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
    design = f"<p>{e(design_line(report))}</p>" if design_line(report) else ""
    if sequential_line(report):
        design += f"<p class='note'>{e(sequential_line(report))}</p>"
    looks_seen = "".join(f"<li>{e(text)}</li>" for text in look_lines(report))
    if looks_seen:
        looks_seen = f"<p><b>Looks before the planned sample was in:</b></p><ul>{looks_seen}</ul>"
    seen = "".join(f"<li>{e(text)}</li>" for text in seen_lines(report))
    if seen:
        looks_seen += f"<p><b>Seen before the lock:</b></p><ul>{seen}</ul>"
    fr = report["final_review"]
    rejected = "".join(
        f"<li>{e(item['item_id'])}: {e(item['comment'] or '(no comment)')}</li>"
        for item in fr["rejected"]
    )
    if rejected:
        rejected = f"<p>Marked not acceptable:</p><ul>{rejected}</ul>"
    judges = "".join(
        f"<tr><td>{e(j['judge'])}</td><td>{j['n_verdicts']}</td>"
        f"<td>{_value_ci(j['agreement_without_ties'])}</td>"
        f"<td>{j['agreement_without_ties']['n']}</td>"
        f"<td><code>{e((j['rubric_hash'] or '-')[:16])}</code></td></tr>"
        for j in report["judges"]
    )
    humans = report["human_agreement"]["without_ties"]
    exclusions = "".join(
        f"<li><b>{e(x['reviewer'])}</b> ({x['n_votes']} votes left out), excluded by "
        f"{e(x['decided_by'])} at {e(x['created_at'])}. Reason: {e(x['reason'])}</li>"
        for x in report.get("exclusions", [])
    )
    exclusions = (
        f"<p><b>Reviewers excluded from every figure:</b></p><ul>{exclusions}</ul>"
        if exclusions
        else "<p class='note'>No reviewer is excluded: every vote counts.</p>"
    )
    signoffs = "".join(_signoff_html(s, report["report_hash"]) for s in report["signoffs"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Ship decision report: {e(report["study"])}</title>
<style>
/* The report's own colours on its own white page: a browser in dark mode would otherwise put
   its dark text on a dark page. */
html {{ background: #fff; color-scheme: light; }}
/* A hash or a timestamp too long for a phone's line breaks rather than widening the page. */
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2rem auto; color: #1d2433;
  padding: 0 1rem; overflow-wrap: break-word; }}
h1 {{ font-size: 1.6rem; }} table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #dde2ea; padding: .35rem .5rem; text-align: left;
  font-size: .9rem; }}
tr.fail td {{ background: #fdecec; }} tr.pass td {{ background: #edf8ef; }}
tr.inconclusive td, tr.interim td {{ background: #fff6e0; }}
.verdict {{ display: inline-block; padding: .3rem .8rem; border-radius: .4rem; font-weight: 700;
  color: white; background: {colour}; }}
.override {{ display: block; margin: .5rem 0; border: 2px solid #c62828; padding: .6rem;
  font-weight: 700; color: #8b1a1a; }}
code {{ font-size: .8rem; overflow-wrap: anywhere; }} svg {{ max-width: 100%; height: auto; }}
@media (max-width: 640px) {{ body {{ margin: 1rem auto; }}
  table {{ display: block; overflow-x: auto; }} }} details {{ margin-top: 2rem; }} .note {{ color: #5a6478; }}
pre {{ white-space: pre-wrap; background: #f6f8fa; padding: 1rem; font-size: .8rem; }}
</style></head><body>
<h1>Ship decision report: study {e(report["study"])}</h1>
<p>Candidate <b>{e(report["candidate"])}</b>, compared with
{", ".join(e(b) for _, b in report["comparisons"])}.
Eval set <b>{e(report["eval_set"]["name"])}</b> ({report["eval_set"]["n_items"]} items),
hash <code>{e(report["eval_set"]["content_hash"] or "")}</code>{e(eval_set_changed(report["eval_set"]))}<br>
Report hash <code>{e(report["report_hash"])}</code> · generated {e(report["generated_at"])}</p>
<p>Gate: <span class="verdict">{e(gate["result"].upper())}</span>
{e(gate_headline(gate).split(" · ", 1)[-1])}</p>{overrides}
<h2>Thresholds</h2>
<p>{locked}</p>{deviations}
<p class="note">Each threshold is decided on its one-sided 95% confidence bound, on at least
{gate["min_items"]} items: pass when the bound clears the bar, fail when it falls short
on the other side, inconclusive otherwise; interim until the planned sample is in.</p>{design}{looks_seen}
<table><tr><th>threshold</th><th>estimate</th><th>two-sided 95% CI</th><th>n</th><th>outcome</th>
<th>reason (decided on the one-sided bound)</th></tr>{rows}</table>
<h2>Win rates</h2>
<p class="note">Share of comparisons the first system wins ((wins + 0.5 ties) / n), from human
votes and from each judge; the line is the 95% bootstrap interval, the dashed line parity.</p>
{win_rate_svg(report["win_rates"])}
{ppi_html(report)}
{graders_html(report)}
{"<h2>Scorecard</h2>" + scorecard_html(report["scorecard"]) if report.get("scorecard") else ""}
<h2>Judges</h2>
<p class="note">Agreement with the human votes, ties excluded, with its 95% interval.
Human-human agreement (the ceiling): {_value_ci(humans)} (n={humans["n"]}).</p>
{exclusions}
<table><tr><th>judge</th><th>verdicts</th><th>agreement (95% CI)</th><th>n</th><th>rubric hash</th></tr>
{judges}</table>
{self_preference_html(report)}
<h2>Final human review</h2>
<p>{fr["acceptable"]} of {fr["n"]} reviewed outputs of {e(fr["system"])} marked acceptable
({fr["n"]} of the {fr["sample_size"]}-output sample reviewed).</p>
{rejected}
<h2>Sign-off</h2><ul>{signoffs or "<li>Not signed yet.</li>"}</ul>
<details><summary>Full report (Markdown), with the regression table by category</summary>
<pre>{e(markdown_body)}</pre></details>
</body></html>
"""


def ppi_html(report: dict) -> str:
    """The prediction-powered win rates as an HTML list ("" when there are none)."""
    lines = prediction_powered_lines(report)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(text)}</li>" for text in lines)
    return (
        f"<h3>Prediction-powered win rates</h3><p class='note'>{html.escape(PPI_NOTE)}</p>"
        f"<ul>{items}</ul>"
    )


def _signoff_html(signoff: dict, current_hash: str) -> str:
    # A signer must see whether their signature covers these figures or an earlier version.
    e = html.escape
    same = signoff["report_hash"] == current_hash
    which = "this report" if same else "an earlier version: the figures changed after signing"
    override = (
        f"<br><b class='override'>Override of a {e(signoff['gate_result'] or '')} gate: "
        f"{e(signoff['override'])}</b>"
        if signoff.get("override")
        else ""
    )
    return (
        f"<li><b>{e(signoff['decision'].upper())}</b> by {e(signoff['signer'])} at "
        f"{e(signoff['created_at'])} ({e(link_text(signoff))}): {e(signoff['comment'])}"
        f"{override}<br><small>signed report hash <code>{e(signoff['report_hash'])}</code> "
        f"({which})</small></li>"
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
        f'viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="win rates with 95% confidence intervals">'
    ]
    for i, w in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        label = html.escape(f"{w['system_a']} vs {w['system_b']} · {w['source']} (n={w['n']})")
        color = "#3b6fb6" if w["source"] == stats.HUMANS else "#8a9bb5"
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


# ---- choosing a format ----


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


_RENDERERS = {"md": render_markdown, "html": render_html, "json": render_json}
REPORT_FORMATS = tuple(_RENDERERS)


def render_report(report: dict, fmt: str) -> str:
    """The report in one of REPORT_FORMATS; InputError names the choices for any other."""
    if fmt not in _RENDERERS:
        raise InputError(
            f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}"
        )
    return _RENDERERS[fmt](report)
