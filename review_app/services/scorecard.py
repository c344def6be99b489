"""The scorecard: every system of a study side by side (DESIGN section 10): grader pass rates,
human criterion means and judge pointwise means, win rates with their length-controlled twin,
Bradley-Terry rankings per source, the candidate as a share of a reference system, and the
regression table (the Results screen's rows of the candidate and its base, with the gate's
outcomes).

Outcomes stay hidden until the study's thresholds are locked, like every other outcome, grader
pass rates included (a bar set after seeing them could be tuned to them): before the lock the
scorecard says only which systems it covers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from review_app import baselines, gate, ranking, stats
from review_app.errors import InputError
from review_app.services import decision, grading, study_data
from review_app.services.context import StudyContext
from review_app.services.study_data import StudyData
from review_app.store import Store

__all__ = ["length_controlled_win_rates", "scorecard", "study_systems"]

HUMANS = stats.HUMANS
_SCORES = {"x": 1.0, "y": 0.0, "tie": 0.5, "both_bad": 0.5}


def scorecard(ctx: StudyContext, reference: str | None = None, base: str | None = None) -> dict:
    """The study's scorecard as one JSON-ready dict. `reference` (default: the best-rated other
    system) is what the candidate is shown as a share of; `base` (default: the system its
    regression thresholds compare with, else the worst-rated other system) is what the regression
    table compares the candidate with."""
    store, study, study_row = ctx.store, ctx.name, ctx.study
    data = ctx.data()
    systems = systems_of(data)
    for role, name in (("reference", reference), ("base", base)):
        if name is not None and name not in systems:
            raise InputError(
                f"{role} system {name!r} is not in study {study!r}; "
                f"choose one of {', '.join(systems)}"
            )
    card = {
        "study": study_row["name"],
        "candidate": data.candidate,
        "systems": systems,
        "outcomes_visible": ctx.lock.visible,
        "graders": [],
        "criteria": [],
        "win_rates": [],
        "ranking": {},
        "reference": None,
        "base": None,
        "reference_share": [],
        "regression": [],
    }
    if not card["outcomes_visible"]:
        card["withheld"] = (
            "outcomes (grader pass rates, criterion means, win rates, rankings, regressions) stay "
            "hidden until the "
            "study's thresholds are locked, so the pass bar cannot be tuned to the results"
        )
        return card
    # The scorecard shows outcomes: before the planned sample is in, that is a recorded look.
    decision.evaluate_gate(ctx)

    if grading.graders_in_force(ctx):
        card["graders"] = grading.grader_summary(ctx)["graders"]
    computed = data.memo("scorecard", lambda: _computed(store, data))
    card["ranking"] = {s: [r.to_json() for r in rs] for s, rs in computed.rankings.items()}
    card["criteria"] = _criteria_rows(computed.means)
    card["win_rates"] = _win_rate_rows(data, computed.length_controlled)
    card["reference"] = reference or _best_other(computed.rankings, data.candidate, systems)
    card["reference_share"] = _reference_share(card["criteria"], data.candidate, card["reference"])
    card["base"] = base or _base(ctx, data, computed.rankings, systems)
    card["regression"] = _regression(ctx, data, card["base"])
    return card


def _coded_pairs(data: StudyData) -> tuple[pd.DataFrame, int]:
    """The study's pairs with their item code (what the bootstrap resamples) and category name,
    and the number of items."""
    item_codes, item_keys = pd.factorize(data.pairs["item_key"].astype(str))
    pairs = data.pairs.assign(
        category=stats.category_names(data.pairs["category"]), item=item_codes
    )
    return pairs, len(item_keys)


def _computed(store: Store, data: StudyData) -> ranking.ScorecardStatistics:
    pairs, n_items, observations = _study_observations(data)
    return ranking.scorecard_statistics(
        observations,
        data.comparisons,
        _ratings(data.ratings(store), pairs),
        ("source", "system", "criterion", "category"),
        rollup="category",
        n_items=n_items,
        seed=data.seed,
        n_boot=data.n_boot,
        # The gate has already computed them (the scorecard is a recorded look at the gate).
        length_controlled=length_controlled_win_rates(data),
    )


def length_controlled_win_rates(data: StudyData) -> list[ranking.LengthControlled]:
    """The length-controlled win rate of each comparison from humans and each real judge (the
    gate's `human_lc_win_rate` and `judge_lc_win_rate`), once per data version: the scorecard's
    own figures, on the same resamples, without its rankings and means."""

    def compute() -> list[ranking.LengthControlled]:
        _, n_items, observations = _study_observations(data)
        return ranking.length_controlled_win_rates(
            observations, data.comparisons, n_items, data.seed, data.n_boot
        )

    return data.memo("length-controlled win rates", compute)


def _study_observations(data: StudyData) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """`_coded_pairs` and `_observations` of the study, once per data version (the gate's
    length-controlled win rates and the scorecard read the same)."""

    def compute() -> tuple[pd.DataFrame, int, pd.DataFrame]:
        pairs, n_items = _coded_pairs(data)
        return pairs, n_items, _observations(data, pairs)

    return data.memo("scorecard observations", compute)


def _win_rates(data: StudyData) -> tuple[list[stats.WinRate], dict[str, list[stats.WinRate]]]:
    """Win rates overall and per category from humans and real judges (baselines say nothing
    about quality): the study's statistics' own without the baselines' (a source's win rates do
    not depend on the sources computed beside it, see `decision.regression_table`; the gate has
    computed them before the scorecard shows anything)."""

    def real(rates: list[stats.WinRate]) -> list[stats.WinRate]:
        return [w for w in rates if not baselines.is_baseline(w.source)]

    def compute():
        overall, by_category = data.win_rates
        return real(overall), {category: real(rates) for category, rates in by_category.items()}

    return data.memo("scorecard win rates", compute)


def study_systems(ctx: StudyContext) -> list[str]:
    """The study's systems as the scorecard lists them (names only: no outcome)."""
    return systems_of(ctx.data())


def systems_of(data: StudyData) -> list[str]:
    """The study's systems, the candidate first, then in the order its comparisons name them."""
    named = [s for pair in data.comparisons for s in pair]
    return list(dict.fromkeys([data.candidate, *named] if data.candidate else named))


def _observations(data: StudyData, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per human vote and per combined verdict of a real judge: source, item code, the
    pair's systems in canonical order, system_x's score (1 won, 0.5 tie or both bad, 0 lost)
    and len_diff. Names are categorical: a study has few of them and many rows."""
    combined = stats.combine_verdicts(data.pairs, data.real_verdicts)
    combined = combined[combined["outcome"].notna()]
    judges = _categorical(combined["judge"].to_numpy(dtype=object))
    sources = pd.Categorical.from_codes(
        np.concatenate([np.zeros(len(data.votes), np.int64), judges.codes + 1]),
        categories=[HUMANS, *judges.categories],
    )
    pair_ids = np.concatenate([data.votes["pair_id"].to_numpy(), combined["pair_id"].to_numpy()])
    outcomes = _categorical(
        np.concatenate(
            [data.votes["outcome"].to_numpy(dtype=object), combined["outcome"].to_numpy(object)]
        )
    )
    scores = np.array([_SCORES.get(o, np.nan) for o in outcomes.categories])[outcomes.codes]
    at = pd.Index(pairs["pair_id"]).get_indexer(pair_ids)
    known = (at >= 0) & (outcomes.codes >= 0)
    at = at[known]
    x = _categorical(pairs["system_x"].to_numpy(dtype=object))
    y = _categorical(pairs["system_y"].to_numpy(dtype=object))
    return pd.DataFrame(
        {
            "source": sources[known],
            "item": pairs["item"].to_numpy()[at],
            "system_a": x[at],
            "system_b": y[at],
            "score": scores[known],
            "len_diff": (pairs["len_x"] - pairs["len_y"]).to_numpy(dtype=float)[at],
        }
    )


def _ratings(ratings: study_data.Ratings, pairs: pd.DataFrame) -> pd.DataFrame:
    """Human and judge ratings with the pair's item code and category (names categorical)."""
    index = pd.Index(pairs["pair_id"])
    humans, judges = ratings.humans, ratings.judges
    at_h, at_j = index.get_indexer(humans["pair_id"]), index.get_indexer(judges["pair_id"])
    keep_h, keep_j = at_h >= 0, at_j >= 0
    at = np.concatenate([at_h[keep_h], at_j[keep_j]])
    source = _stack(
        [
            pd.Categorical.from_codes(np.zeros(int(keep_h.sum()), np.int64), [HUMANS]),
            pd.Categorical(judges["judge"])[keep_j],
        ]
    )
    return pd.DataFrame(
        {
            "source": source,
            "item": pairs["item"].to_numpy()[at],
            "system": _stack(
                [pd.Categorical(humans["system"])[keep_h], pd.Categorical(judges["system"])[keep_j]]
            ),
            "criterion": _stack(
                [
                    pd.Categorical(humans["criterion"])[keep_h],
                    pd.Categorical(judges["criterion"])[keep_j],
                ]
            ),
            "category": _categorical(pairs["category"].to_numpy(dtype=object))[at],
            "total": np.concatenate(
                [humans["score"].to_numpy(float)[keep_h], judges["score"].to_numpy(float)[keep_j]]
            ),
            "n": np.ones(len(at)),
        }
    )


def _categorical(values: np.ndarray) -> pd.Categorical:
    """Names as a categorical without converting every value to a string array first."""
    codes, names = pd.factorize(values)
    return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))


def _stack(parts: list[pd.Categorical]) -> pd.Categorical:
    """Categoricals one after the other, over the union of their names."""
    names = pd.Index(
        list(dict.fromkeys(n for part in parts for n in part.categories)), dtype=object
    )
    codes = []
    for part in parts:
        mapping = np.append(names.get_indexer(part.categories), -1)  # code -1 (missing) stays
        codes.append(mapping[part.codes])
    return pd.Categorical.from_codes(np.concatenate(codes), categories=names)


def _criteria_rows(means: pd.DataFrame) -> list[dict]:
    return [
        {
            "source": row.source,
            "system": row.system,
            "category": row.category if isinstance(row.category, str) else None,
            "criterion": row.criterion,
            "mean": row.value,
            "ci": list(row.ci) if row.ci is not None else None,
            "n": int(row.n),
        }
        for row in means.itertuples()
    ]


def _win_rate_rows(data: StudyData, lcs: list[ranking.LengthControlled]) -> list[dict]:
    lc = {(x.source, x.system_a, x.system_b): x for x in lcs}
    sources = {HUMANS, *data.real_judges}
    rows = []
    for w in _win_rates(data)[0]:
        if w.source not in sources:
            continue
        twin = lc.get((w.source, w.system_a, w.system_b))
        rows.append(
            {
                "source": w.source,
                "system_a": w.system_a,
                "system_b": w.system_b,
                "win_rate": w.value,
                "ci": list(w.ci) if w.ci else None,
                "lc_win_rate": twin.value if twin else None,
                "lc_ci": list(twin.ci) if twin and twin.ci else None,
                "lc_reason": (twin.reason if twin else "no outcomes") or None,
                "n": w.n,
            }
        )
    return rows


def _rating_of(rankings: dict[str, list[ranking.Rating]], system: str) -> float:
    for source in (HUMANS, *rankings):
        for r in rankings.get(source, []):
            if r.system == system:
                return r.rating
    return float("nan")


def _best_other(
    rankings: dict[str, list[ranking.Rating]], candidate: str | None, systems: list[str]
) -> str | None:
    others = [s for s in systems if s != candidate]
    rated = [s for s in others if np.isfinite(_rating_of(rankings, s))]
    return max(rated, key=lambda s: _rating_of(rankings, s)) if rated else None


def _base(
    ctx: StudyContext,
    data: StudyData,
    rankings: dict[str, list[ranking.Rating]],
    systems: list[str],
) -> str | None:
    """The system the candidate must not regress against: the one its regression thresholds
    name, else the worst-rated other system."""
    for t in ctx.thresholds:
        if t.metric == gate.REGRESSION_METRIC:
            named = {t.params["system_a"], t.params["system_b"]}
            if data.candidate in named and len(named) == 2:
                return (named - {data.candidate}).pop()
    others = [s for s in systems if s != data.candidate]
    rated = [s for s in others if np.isfinite(_rating_of(rankings, s))]
    return min(rated, key=lambda s: _rating_of(rankings, s)) if rated else None


def _reference_share(
    criteria: list[dict], candidate: str | None, reference: str | None
) -> list[dict]:
    """The candidate's mean on each criterion as a share of the reference system's."""
    if candidate is None or reference is None:
        return []
    overall = {
        (r["source"], r["criterion"], r["system"]): r["mean"]
        for r in criteria
        if r["category"] is None
    }
    rows = []
    for (source, criterion, system), value in overall.items():
        if system != candidate:
            continue
        ref = overall.get((source, criterion, reference))
        rows.append(
            {
                "source": source,
                "criterion": criterion,
                "candidate": value,
                "reference": ref,
                "share": value / ref if value is not None and ref else None,
            }
        )
    return rows


def _regression(ctx: StudyContext, data: StudyData, base: str | None) -> list[dict]:
    """The candidate against `base`: the rows of the study's one regression table (the Results
    screen's and the report's, with the gate's outcomes) that compare the two."""
    if not data.candidate or base is None:
        return []
    # The table reads only the win rates (no calibration is computed for it).
    inputs = gate.GateInputs(None, *_win_rates(data), candidate=data.candidate)
    return [
        row
        for row in decision.regression_table(ctx, data, inputs)
        if (row["system_a"], row["system_b"]) == (data.candidate, base)
    ]
