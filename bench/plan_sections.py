"""The planning and looks half of the decision simulations (bench/decision_sim.py prints them):
whether a design `review-app plan` calls 80% passes that often at its stated truth, how often it
passes falsely at the bar, and what looks during the interim can do at parity. Every study is
simulated through the project's own functions (stats.category_win_rates, gate.decide_gate,
planning.propose), with fixed seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from review_app import gate, planning, stats

CANDIDATE, BASE = "tuned", "base"
# The correlation of two votes on one comparison in the simulated studies (the plan assumes a
# larger one, 0.3, to stay on the safe side).
SIMULATED_CORRELATION = 0.2


def _frames(
    rng: np.random.Generator, suites: dict[str, tuple[int, float]], k: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs and k votes per pair: per suite (items, true win rate of the candidate), each
    comparison with its own chance (Beta with that mean and `SIMULATED_CORRELATION`)."""
    concentration = 1 / SIMULATED_CORRELATION - 1
    pair_rows, vote_rows, pair_id = [], [], 0
    for category, (items, truth) in suites.items():
        p = rng.beta(truth * concentration, (1 - truth) * concentration, items)
        wins = rng.random((items, k)) < p[:, None]
        for i in range(items):
            pair_id += 1
            pair_rows.append((pair_id, f"{category}-{i}", category, BASE, CANDIDATE, 100, 100, 10))
            for j in range(k):
                vote_rows.append((pair_id, f"r{j}", "y" if wins[i, j] else "x"))
    pairs = pd.DataFrame(
        pair_rows,
        columns=[
            "pair_id",
            "item_key",
            "category",
            "system_x",
            "system_y",
            "len_x",
            "len_y",
            "len_prompt",
        ],
    ).assign(prompt="p", reference=None, output_x="x", output_y="y")
    votes = pd.DataFrame(vote_rows, columns=["pair_id", "reviewer", "outcome"])
    system = pairs.set_index("pair_id")
    votes = votes.assign(
        vote_id=np.arange(1, len(votes) + 1),
        winner=np.where(
            votes["outcome"] == "x",
            system.loc[votes["pair_id"], "system_x"].to_numpy(),
            system.loc[votes["pair_id"], "system_y"].to_numpy(),
        ),
        shown_left=None,
        rationale="",
        created_at="2026-01-01T00:00:00",
    )
    return pairs, votes


def _no_verdicts() -> pd.DataFrame:
    return pd.DataFrame(columns=stats.VERDICT_COLUMNS)


def _inputs(pairs, votes, reviewed: int, acceptable: int, n_boot: int) -> gate.GateInputs:
    comparisons = [(CANDIDATE, BASE)]
    verdicts = _no_verdicts()
    return gate.GateInputs(
        None,
        stats.win_rates(pairs, votes, verdicts, comparisons, n_boot=n_boot),
        stats.category_win_rates(pairs, votes, verdicts, comparisons, n_boot=n_boot),
        {"n": reviewed, "acceptable": acceptable, "sample_size": reviewed},
        candidate=CANDIDATE,
    )


def _regression(categories: list[str]) -> gate.Threshold:
    return gate.validate_threshold(
        "max_regression_points",
        {"system_a": CANDIDATE, "system_b": BASE, "categories": categories},
        "<=",
        5,
    )


REVIEW = gate.validate_threshold("final_review_acceptable_rate", {}, ">=", 0.9)


def _planned(suites: int, items: int) -> tuple[list[gate.Threshold], planning.DesignPower]:
    """The four-suite regression threshold and a final review, planned over `items` items per
    suite: the smallest design the planner calls 80%."""
    names = [f"suite{i}" for i in range(suites)]
    thresholds = [_regression(names), REVIEW]
    shape = planning.StudyShape(
        {(CANDIDATE, BASE): {n: items for n in names}},
        400,
        CANDIDATE,
        {n: items for n in names},
        {CANDIDATE: items * suites, BASE: items * suites},
    )
    proposal = planning.propose(thresholds, shape, planning.Design(3, 50))
    assert proposal.proposed is not None, "the planner found no design"
    return thresholds, proposal.proposed


def plan_power_section(simulations: int, n_boot: int, seed: int = 11) -> dict:
    """{design: {pass_rate, planned, false_pass}}: a design with four regression suites (margin
    5, truth at parity) and a final review (bar 0.9, truth 0.97) at the size the planner calls
    80%; its pass rate in simulated studies at that truth, and its false pass rate with one
    suite exactly at the margin (the other three at parity) and the final review at the bar."""
    rng = np.random.default_rng(seed)
    suites = 4
    # The smallest number of items per suite at which some design reaches 80%.
    items = next(
        n
        for n in range(300, 3000, 20)
        if planning.propose(
            [_regression([f"suite{i}" for i in range(suites)]), REVIEW],
            planning.StudyShape(
                {(CANDIDATE, BASE): {f"suite{i}": n for i in range(suites)}},
                400,
                CANDIDATE,
                {f"suite{i}": n for i in range(suites)},
                {CANDIDATE: n * suites, BASE: n * suites},
            ),
            planning.Design(3, 50),
        ).proposed
        is not None
    )
    thresholds, design = _planned(suites, items)
    k, reviewed = design.design.votes_per_comparison, design.design.final_review

    def passes(truths: list[float], acceptable_share: float) -> bool:
        layout = {f"suite{i}": (items, t) for i, t in enumerate(truths)}
        pairs, votes = _frames(rng, layout, k)
        acceptable = int(rng.binomial(reviewed, acceptable_share))
        inputs = _inputs(pairs, votes, reviewed, acceptable, n_boot)
        return gate.decide_gate(thresholds, inputs, 30).result == "pass"

    honest = sum(passes([0.5] * suites, planning.FINAL_REVIEW_TRUTH) for _ in range(simulations))
    at_margin = sum(passes([0.45] + [0.5] * (suites - 1), 0.97) for _ in range(simulations))
    review_at_bar = sum(passes([0.5] * suites, 0.9) for _ in range(simulations))
    name = f"{suites} suites x {items} items, k={k}, final review {reviewed}"
    return {
        name: {
            "planned": round(design.power, 4),
            "pass_rate": round(honest / simulations, 4),
            "false_pass": {
                "one_suite_at_the_margin": round(at_margin / simulations, 4),
                "final_review_at_the_bar": round(review_at_bar / simulations, 4),
            },
        }
    }


WIN = gate.validate_threshold("human_win_rate", {"system_a": CANDIDATE, "system_b": BASE}, ">", 0.5)


def looks_section(simulations: int, n_boot: int, items: int = 100, every: int = 10, seed: int = 5):
    """At parity, a study of `items` comparisons x 3 votes looked at after every `every`
    comparisons: how often some interim row reads `pass` (`interim_rows_pass_at_parity`) and how
    often the gate passes at any look, the last included (`gate_false_pass_with_looks`)."""
    rng = np.random.default_rng(seed)
    row_passes = gate_passes = 0
    for _ in range(simulations):
        pairs, votes = _frames(rng, {"general": (items, 0.5)}, 3)
        seen_row_pass = seen_gate_pass = False
        for reached in range(every, items + 1, every):
            shown = votes[votes["pair_id"] <= reached]
            inputs = _inputs(pairs[pairs["pair_id"] <= reached], shown, 0, 0, n_boot)
            plan = gate.Plan(items, 3, 0, comparisons_reached=reached)
            decision = gate.decide_gate([WIN], inputs, 30, plan)
            if reached < items and any(r.outcome == "pass" for r in decision.results):
                seen_row_pass = True
            if decision.result == "pass":
                seen_gate_pass = True
        row_passes += seen_row_pass
        gate_passes += seen_gate_pass
    return {
        "interim_rows_pass_at_parity": round(row_passes / simulations, 4),
        "gate_false_pass_with_looks": round(gate_passes / simulations, 4),
    }
