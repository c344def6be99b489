"""Scorecard (admin, signer): every system of the study side by side, one row per metric and one
column per system, then the rankings, win rates raw and length-controlled, and the regression
table. Outcomes stay hidden until the study's thresholds are locked."""

import altair as alt
import pandas as pd
import streamlit as st

from review_app import report, ui
from review_app.report import format_ci
from review_app.services import scorecard

store = ui.get_store()
actor = ui.signed_in(store, "scorecard")

st.title("Scorecard")
ctx = ui.study_context(store, actor, ui.settings())
if ctx is None:
    st.stop()
study = ctx.study
systems = scorecard.study_systems(ctx)
candidate = study.get("candidate")
others = [s for s in systems if s != candidate]
left, right = st.columns(2)
AUTO = "(automatic)"
reference = left.selectbox(
    "Reference system (the candidate as a share of it)",
    [AUTO, *others],
    key="scorecard_reference",
    help="By default the best-rated system other than the candidate.",
)
base = right.selectbox(
    "Base system (the regression table compares the candidate with it)",
    [AUTO, *others],
    key="scorecard_base",
    help="By default the system the study's regression thresholds name, else the worst-rated.",
)
with st.spinner("Computing the scorecard..."):
    card = scorecard.scorecard(
        ctx,
        reference=None if reference == AUTO else reference,
        base=None if base == AUTO else base,
    )

if not card["outcomes_visible"]:
    st.info(f"The scorecard's {ui.plain(card['withheld'])}. Lock them on the Gate screen.")
    st.stop()

st.caption(
    f"Candidate **{ui.plain(card['candidate'])}**. Each figure is over all categories, with its "
    "95% bootstrap interval over items in brackets. Ratings are 1-5; a Bradley-Terry rating is "
    "on the Elo scale (mean 1000; 400 points = ten-to-one odds of winning)."
)
rows = pd.DataFrame(report.scorecard_rows(card))
if rows.empty:
    st.info("No votes, ratings or verdicts yet.")
else:
    st.dataframe(
        rows,
        hide_index=True,
        # Every row in view: the table is the screen's summary, not something to scroll.
        height=36 * (len(rows) + 1) + 2,
        column_config={
            "metric": st.column_config.TextColumn("metric", pinned=True, width="medium"),
            **{
                s: st.column_config.TextColumn(
                    f"{s} (candidate)" if s == card["candidate"] else s, width="medium"
                )
                for s in card["systems"]
            },
        },
    )
share = [r for r in card["reference_share"] if r["share"] is not None]
if share:
    st.markdown(
        f"**{ui.plain(card['candidate'])} as a share of {ui.plain(card['reference'])}:** "
        + "; ".join(
            f"{ui.plain(r['criterion'])} ({ui.plain(r['source'])}) {100 * r['share']:.0f}%"
            for r in share
        )
    )

st.subheader("Ranking")
st.caption(
    "Bradley-Terry ratings fitted over every comparison of the study at once, per source: one "
    "observation per human vote or per judge verdict combined over both orders; a tie is half a "
    "win for each side."
)
ranked = pd.DataFrame(
    [
        {
            "source": source,
            "rank": rank,
            "system": r["system"],
            "rating": r["rating"],
            "95% CI": format_ci(r["ci"], 0),
            "low": r["ci"][0] if r["ci"] else None,
            "high": r["ci"][1] if r["ci"] else None,
            "n": r["n"],
        }
        for source, ratings in card["ranking"].items()
        for rank, r in enumerate(ratings, start=1)
    ]
)
if ranked.empty:
    st.info("No votes or verdicts yet.")
else:
    y = alt.Y(
        "system:N",
        title=None,
        sort=alt.EncodingSortField("rating", op="max", order="descending"),
        axis=alt.Axis(labelOverlap=False, labelLimit=200),
    )
    x = alt.X("rating:Q", title="rating and 95% CI", scale=alt.Scale(zero=False))
    color = alt.Color("source:N", legend=alt.Legend(title=None, orient="bottom"))
    # Several sources: one line each within a system's band.
    offset = {"yOffset": alt.YOffset("source:N")} if ranked.source.nunique() > 1 else {}
    chart = alt.Chart(ranked)
    # With one line per source the step is each line's (the offset band's), not the system's.
    band = 18 if offset else 34
    st.altair_chart(
        alt.layer(
            chart.mark_rule(strokeWidth=2.5).encode(
                y=y, x="low:Q", x2="high:Q", color=color, **offset
            ),
            chart.mark_point(filled=True, size=70).encode(
                y=y,
                x=x,
                color=color,
                tooltip=["source:N", "system:N", "rating:Q", "95% CI:N", "n:Q"],
                **offset,
            ),
            alt.Chart().mark_rule(strokeDash=[4, 3], color="#8f9aab").encode(x=alt.datum(1000)),
        ).properties(height=alt.Step(band)),
        width="stretch",
    )
    st.dataframe(
        ranked.drop(columns=["low", "high"]),
        hide_index=True,
        column_config={"rating": st.column_config.NumberColumn(format="%.0f")},
    )
    for source, ratings in card["ranking"].items():
        for note in report.rating_notes(ratings):
            st.caption(f"{ui.plain(source)}: {ui.plain(note)}")

st.subheader("Win rates, raw and length-controlled")
st.caption(
    "(wins + 0.5 ties) / n of the first system over the second. The length-controlled twin reads "
    "a logistic regression of the outcome on the length difference at zero difference "
    "(AlpacaEval 2): a high raw win rate that falls to about 0.5 here was bought by length. "
    "When fewer than 10% of comparisons lie on the minority side of equal length, length and "
    "quality cannot be told apart and the row says so instead of giving a number."
)
rates = pd.DataFrame(card["win_rates"])
if rates.empty:
    st.info("No votes or verdicts yet.")
else:
    rates.insert(0, "comparison", rates.system_a + " vs " + rates.system_b)
    rates["95% CI"] = rates.ci.map(format_ci)
    rates["length-controlled"] = [report.length_controlled_text(w) for w in card["win_rates"]]
    rates["length-controlled 95% CI"] = rates.lc_ci.map(format_ci)
    st.dataframe(
        rates[
            [
                "comparison",
                "source",
                "win_rate",
                "95% CI",
                "length-controlled",
                "length-controlled 95% CI",
                "n",
            ]
        ],
        hide_index=True,
        column_config={
            "win_rate": st.column_config.NumberColumn("win rate", format="%.3f"),
        },
    )

st.subheader(f"Regression table: {ui.plain(card['candidate'])} vs {ui.plain(card['base'] or '-')}")
if not card["regression"]:
    st.info("The candidate is not compared with a base system in this study.")
else:
    ui.regression_table(card["regression"], comparison=False)

criteria = pd.DataFrame(card["criteria"])
if not criteria.empty:
    with st.expander("Criterion means by category"):
        by_category = criteria[criteria.category.notna()].copy()
        by_category["value"] = [
            report.format_mean(m, ci)
            for m, ci in zip(by_category["mean"], by_category["ci"], strict=True)
        ]
        table = by_category.pivot_table(
            index=["category", "criterion", "source"],
            columns="system",
            values="value",
            aggfunc="first",
        ).reset_index()
        st.dataframe(table, hide_index=True)
