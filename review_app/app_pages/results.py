"""Results (admin, signer): win rates with CIs, the regression table, error analysis and the trend
across studies on the same eval set. Hidden until the study's thresholds are locked."""

import pandas as pd
import streamlit as st

from review_app import baselines, report, ui
from review_app.errors import OutcomesHidden
from review_app.report import format_ci
from review_app.services import signoff

store = ui.get_store()
actor = ui.signed_in(store, "results")

# Lost comparisons drawn in full per category (each is a prompt and two outputs).
LOSSES_SHOWN = 20
# The key of a category's losses expander: this prefix and the category's name.
LOSSES_OPEN = "losses-open-"

st.title("Results")
ctx = ui.study_context(store, actor, ui.settings())
if ctx is None:
    st.stop()
try:
    results = signoff.study_results(ctx)
except OutcomesHidden as exc:
    st.info(
        f"{ui.plain(exc)}. Lock them on the Gate screen; calibration numbers stay visible meanwhile."
    )
    st.stop()


rates = pd.DataFrame(
    [
        {
            "comparison": f"{w.system_a} vs {w.system_b}",
            "source": w.source,
            "win rate": w.value,
            "95% CI": format_ci(w.ci),
            "low": w.ci[0] if w.ci else None,
            "high": w.ci[1] if w.ci else None,
            "items": w.n_items or None,
            "comparisons": w.n_comparisons or None,
            "votes or verdicts": w.n,
            "wins": w.wins,
            "ties": w.ties,
            "losses": w.losses,
        }
        for w in results["win_rates"]
    ]
)
st.subheader("Win rates")
st.caption(
    "(wins + 0.5 ties) / n of the first system over the second, from human votes and from each "
    "judge's order-combined verdicts; 95% bootstrap CI over items. A comparison is one pair of "
    "outputs; humans give it several votes, a judge one combined verdict. The Gate counts items "
    "and comparisons, as the columns of the same names here."
)
if rates.empty:
    st.info("No votes or verdicts yet.")
else:
    plotted = rates.dropna(subset=["win rate"]).assign(
        kind=lambda f: f.source.map(
            lambda s: (
                "humans" if s == "humans" else "baseline" if baselines.is_baseline(s) else "judge"
            )
        )
    )
    # Humans first, then real judges, then the baselines they must beat.
    order = sorted(
        plotted.source.unique(), key=lambda s: (s != "humans", baselines.is_baseline(s), s)
    )
    kinds = {"domain": ["humans", "judge", "baseline"], "range": ["#2f6db5", "#3aa38f", "#8f9aab"]}
    # One chart per comparison, as wide as the screen (a faceted chart has a fixed width and is
    # cut off on a phone). Bars are translucent and whiskers solid in the bar's own colour, so a
    # whisker stays visible on a light and on a dark background.
    for comparison, frame in plotted.groupby("comparison", sort=False):
        st.markdown(f"**{ui.plain(comparison)}**")
        y = ui.encode("source", "nominal", title=None, sort=order, axis={"labelLimit": 150})
        x = ui.encode(
            "win rate",
            "quantitative",
            scale={"domain": [0, 1]},
            axis={"values": [i / 10 for i in range(11)], "format": ".1f"},
            title="win rate and 95% CI",
        )
        color = ui.encode(
            "kind", "nominal", scale=kinds, legend={"title": None, "orient": "bottom"}
        )
        bars = {
            "mark": {"type": "bar", "opacity": 0.45, "height": {"band": 0.7}},
            "encoding": {
                "y": y,
                "x": x,
                "color": color,
                "tooltip": [
                    ui.encode("source", "nominal"),
                    ui.encode("win rate", "quantitative"),
                    ui.encode("95% CI", "nominal"),
                    ui.encode("items", "quantitative"),
                    ui.encode("votes or verdicts", "quantitative"),
                ],
            },
        }
        whiskers = {
            "mark": {"type": "rule", "strokeWidth": 2.5},
            "encoding": {
                "y": y,
                "x": ui.encode("low", "quantitative"),
                "x2": {"field": "high"},
                "color": color,
            },
        }
        caps = {
            "layer": [
                {
                    "mark": {"type": "tick", "thickness": 2.5, "size": 14},
                    "encoding": {"y": y, "x": ui.encode(end, "quantitative"), "color": color},
                }
                for end in ("low", "high")
            ]
        }
        point = {
            "mark": {"type": "point", "filled": True, "size": 45},
            "encoding": {"y": y, "x": x, "color": color},
        }
        parity = {
            "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#d64545"},
            "encoding": {"x": {"datum": 0.5}},
        }
        ui.chart(
            {
                "data": {"name": "rates"},
                "height": 34 * frame.source.nunique() + 50,
                "layer": [bars, whiskers, caps, point, parity],
            },
            rates=frame,
        )
    st.dataframe(
        rates.drop(columns=["low", "high"]),
        hide_index=True,
        column_config={"win rate": st.column_config.NumberColumn(format="%.3f")},
    )

if results["prediction_powered"]:
    st.markdown("**Prediction-powered win rates**")
    st.caption(ui.plain(report.PPI_NOTE))
    st.dataframe(
        pd.DataFrame(report.prediction_powered_table(results["prediction_powered"])),
        hide_index=True,
    )

st.subheader("Regression table")
if not results["regression"]:
    st.info("No votes or verdicts per category yet.")
else:
    ui.regression_table(results["regression"])
    gated = results["regression_thresholds"]
    st.caption(
        "Regression thresholds: " + ui.plain("; ".join(t.describe() for t in gated))
        if gated
        else "No regression threshold is locked: every row shows its change and CI, undecided."
    )

st.subheader("Error analysis")
left, right = st.columns(2)
with left:
    st.markdown(f"**{ui.plain(results['candidate'])} by length** (human votes)")
    st.dataframe(
        pd.DataFrame(results["by_length"]),
        hide_index=True,
        column_config={"win_rate": st.column_config.NumberColumn("win rate", format="%.2f")},
    )
with right:
    losses = results["losses"]
    st.markdown(f"**Where {ui.plain(results['candidate'])} lost** (human majority), by category")
    if not losses:
        st.write("No losses by human majority.")
    counts = pd.Series([r["category"] for r in losses]).value_counts()
    for category, n in counts.items():
        # Drawn and read only while open: closed, a category's losses cost the screen nothing
        # (every loss in full took seconds on a large study; open, each shows its first few).
        box = st.expander(
            f"{ui.plain(category)}: {n} lost comparisons",
            key=f"{LOSSES_OPEN}{category}",
            on_change="rerun",
        )
        if not box.open:
            continue
        with box:
            shown = signoff.loss_details(
                ctx, [r for r in losses if r["category"] == category][:LOSSES_SHOWN]
            )
            if n > len(shown):
                st.caption(
                    f"The first {len(shown)} of {n} by item id; `review-app export votes` has all."
                )
            for r in shown:
                # Plain text keeps every line as written and draws fast: this screen can list
                # many losses at once.
                st.markdown(f"**{ui.plain(r['item_id'])}** vs {ui.plain(r['opponent'])}")
                st.text(r["prompt"])
                a, b = st.columns(2)
                a.caption(ui.plain(results["candidate"]))
                a.text(r["candidate_output"] or "(empty output)")
                b.caption(ui.plain(r["opponent"]))
                b.text(r["opponent_output"] or "(empty output)")
                for rationale in r["rationales"]:
                    st.caption(f"Reviewer: {ui.plain(rationale)}")
                st.divider()

trend = pd.DataFrame(results["trend"])
if not trend.empty and trend.study.nunique() > 1:
    st.subheader("Trend across studies on this eval set")
    trend["comparison"] = trend.system_a + " vs " + trend.system_b
    ui.chart(
        {
            "data": {"name": "trend"},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": ui.encode("study", "nominal"),
                "y": ui.encode("value", "quantitative", title="human win rate"),
                "color": ui.encode("comparison", "nominal"),
            },
        },
        trend=trend,
    )
