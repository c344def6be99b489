"""Benchmark: how many human labels a calibrated judge and stopping when decided save, at what
cost in validity, measured by simulating studies through the project's own functions
(`ppi.mean`, `sequential.look_at`, `gate.decide`).

Sections of the JSON object printed on the last line:

- `ppi: {agreement: {coverage, width_ratio, labels_ratio}}`, for a judge agreeing with the
  human label on 60-90% of items: studies of `ITEMS` items judged by the judge, `LABELS` of them
  (a random subset) with one human vote each, a true win rate of 0.6; the agreement is the
  share of votes the judge's verdict matches (votes are decisive here, so it is exactly that).
  `coverage`: the share of studies whose prediction-powered 95% interval holds the true win
  rate; `width_ratio`: its width over the humans-only interval's (a Wald interval on the same
  labels); `labels_ratio`: the human labels a prediction-powered study needs for 80% power
  (its one-sided 95% lower bound above 0.5) over those humans alone need (found by bisection
  over simulated studies).
- `biased_judge: {coverage}`: the same with a judge that always prefers the longer answer (the
  candidate's is longer on 70% of items, whatever the humans think).
- `sequential: {false_pass_any_look, expected_labels_ratio, ...}`: humans only, one vote per
  item, a look after every 10 votes from the minimum of 30 items, each decided by the gate at
  the look's boundary (`gate.decide` with `sequential.look_at`): the chance that a candidate
  at parity passes at some look, and at a true win rate of 0.6 the expected labels at stopping
  over the fixed design with 80% power (the sequential maximum stretched to keep that power).
  The win rate is measured with Wilson's bounds (the gate's share measurement); computed
  exactly, by carrying the binomial distribution of wins from look to look.
- `simulations` (studies per figure; twice as many per bisection step of `labels_ratio`),
  `targets` (coverage >= 0.94 everywhere, labels_ratio <= 0.7 at agreement 0.8,
  false pass <= 5%, expected labels <= 0.8 of the fixed design) and whether each is met.

Fixed seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy.stats import norm

from review_app import gate, ppi, sequential, stats

ITEMS = 2000
LABELS = 200
TRUTH = 0.6
TIES = 0.0
AGREEMENTS = (0.6, 0.7, 0.8, 0.9)
LOOK_EVERY = 10
MIN_ITEMS = 30
WIN = gate.validate_threshold("human_win_rate", {"system_a": "tuned", "system_b": "base"}, ">", 0.5)


def _study(rng: np.random.Generator, agreement: float | None, truth: float = TRUTH):
    """Per item the human score for the candidate (1, 0, or 0.5 for a tie) and the judge's; a
    judge with `agreement` None prefers the longer answer."""
    wins = rng.random(ITEMS) < truth
    y = np.where(wins, 1.0, 0.0)
    y[rng.random(ITEMS) < TIES] = 0.5
    if agreement is None:
        f = np.where(rng.random(ITEMS) < 0.7, 1.0, 0.0)
    else:
        decided = np.where(wins, 1.0, 0.0)
        f = np.where(rng.random(ITEMS) < agreement, decided, 1 - decided)
    return y, f


def _ppi_estimate(rng, y, f, labels: int):
    chosen = np.zeros(len(y), bool)
    chosen[rng.choice(len(y), labels, replace=False)] = True
    return ppi.mean(y[chosen], f[chosen], f[~chosen]), y[chosen]


def _true_mean(truth: float = TRUTH) -> float:
    # Ties score 0.5 whatever the decided outcome was.
    return (1 - TIES) * truth + TIES * 0.5


def ppi_section(runs: int, agreement: float | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truth = _true_mean()
    covered, ratios = 0, []
    for _ in range(runs):
        y, f = _study(rng, agreement)
        est, labelled = _ppi_estimate(rng, y, f, LABELS)
        low, high = est.interval(stats.Z_95)
        covered += low <= truth <= high
        human_se = labelled.std() / math.sqrt(len(labelled))
        ratios.append(est.se / human_se)
    return {"coverage": covered / runs, "width_ratio": float(np.mean(ratios))}


def _power(rng, agreement: float | None, labels: int, runs: int, judge: bool) -> float:
    passes = 0
    for _ in range(runs):
        y, f = _study(rng, agreement)
        if judge:
            est, _ = _ppi_estimate(rng, y, f, labels)
            low = est.interval(stats.Z_ONE_SIDED_95)[0]
        else:
            labelled = y[rng.choice(len(y), labels, replace=False)]
            low = labelled.mean() - stats.Z_ONE_SIDED_95 * labelled.std() / math.sqrt(labels)
        passes += low > 0.5
    return passes / runs


def labels_for_power(agreement: float | None, judge: bool, runs: int, seed: int) -> int:
    """The fewest labels (to 2%) whose simulated power reaches 80%, by bisection."""
    low, high = 20, ITEMS // 2
    while high - low > max(2, low // 50):
        mid = (low + high) // 2
        if _power(np.random.default_rng(seed), agreement, mid, runs, judge) >= 0.8:
            high = mid
        else:
            low = mid
    return high


def _outcomes_at(n: int, n_max: int, history: list[float], fixed: bool) -> np.ndarray:
    """The gate's outcome at a look after `n` votes for every number of wins 0..n: +1 pass,
    -1 fail, 0 go on (a fixed design decides only at `n_max`, without looks)."""
    fraction = n / n_max
    look = None if fixed else sequential.look_at(history, fraction)
    until = None if n >= n_max else f"{n_max} votes"
    out = np.zeros(n + 1, dtype=int)
    for wins in range(n + 1):
        share = wins / n
        bounds = stats.wilson_interval(share, n, stats.Z_ONE_SIDED_95)
        m = gate.Measurement(share, None, bounds, n, "simulated")
        outcome = gate.decide(WIN, m, MIN_ITEMS, until, look).outcome
        out[wins] = {"pass": 1, "fail": -1}.get(outcome, 0)
    return out


def exact_design(p: float, n_max: int, fixed: bool) -> tuple[float, float]:
    """The chance that the gate passes, and the expected votes at stopping, for one vote per
    item won with chance `p`, looked at every `LOOK_EVERY` votes from `MIN_ITEMS` (or once, at
    `n_max`, for a fixed design): exact, by carrying the distribution of wins from look to look
    over the studies not stopped yet."""
    looks = [n_max] if fixed else list(range(MIN_ITEMS, n_max, LOOK_EVERY)) + [n_max]
    going = np.array([1.0])  # P(wins = w, not stopped) after `done` votes
    done, passed, expected_n, history = 0, 0.0, 0.0, []
    for n in looks:
        step = n - done
        kernel = np.array(
            [math.comb(step, j) * p**j * (1 - p) ** (step - j) for j in range(step + 1)]
        )
        going = np.convolve(going, kernel)
        outcomes = _outcomes_at(n, n_max, history, fixed)
        history.append(n / n_max)
        stopping = going * (outcomes != 0)
        passed += float(going[outcomes == 1].sum())
        expected_n += n * float(stopping.sum())
        going = going * (outcomes == 0)
        done = n
    expected_n += n_max * float(going.sum())
    return passed, expected_n


def sequential_section() -> dict:
    """Exact error rates and labels of the sequential design against the fixed one (no
    simulation noise: the binomial distribution carried from look to look)."""
    z = stats.Z_ONE_SIDED_95
    drift = z + float(norm.ppf(0.8))
    # Wilson's fixed design with 80% power at 0.6 (one decided vote each: sd 0.5 under the null).
    fixed_n = math.ceil((drift * 0.5 / (TRUTH - 0.5)) ** 2)
    design = sequential.expected(drift, n_looks=max(1, (fixed_n - MIN_ITEMS) // LOOK_EVERY))
    n_max = math.ceil(fixed_n * design.max_ratio)
    false_pass, _ = exact_design(0.5, n_max, fixed=False)
    power, used = exact_design(TRUTH, n_max, fixed=False)
    fixed_false_pass, _ = exact_design(0.5, fixed_n, fixed=True)
    fixed_power, _ = exact_design(TRUTH, fixed_n, fixed=True)
    return {
        "false_pass_any_look": false_pass,
        "expected_labels_ratio": used / fixed_n,
        "fixed_labels": fixed_n,
        "max_labels": n_max,
        "power": power,
        "fixed_power": fixed_power,
        "fixed_false_pass": fixed_false_pass,
        "looks": len(range(MIN_ITEMS, n_max, LOOK_EVERY)) + 1,
    }


def targets_section(figures: dict) -> dict:
    coverages = {a: v["coverage"] for a, v in figures["ppi"].items()}
    coverages["biased_judge"] = figures["biased_judge"]["coverage"]
    targets = {
        "coverage_min": {"target": 0.94, "figure": min(coverages.values())},
        "labels_ratio_at_0.8": {"target": 0.7, "figure": figures["ppi"]["0.8"]["labels_ratio"]},
        "false_pass_any_look": {
            "target": 0.05,
            "figure": figures["sequential"]["false_pass_any_look"],
        },
        "expected_labels_ratio": {
            "target": 0.8,
            "figure": figures["sequential"]["expected_labels_ratio"],
        },
    }
    met = {
        "coverage_min": targets["coverage_min"]["figure"] >= 0.94,
        "labels_ratio_at_0.8": targets["labels_ratio_at_0.8"]["figure"] <= 0.7,
        # The simulation's own noise (binomial, at the number of runs) is allowed for.
        "false_pass_any_look": targets["false_pass_any_look"]["figure"] <= 0.05,
        "expected_labels_ratio": targets["expected_labels_ratio"]["figure"] <= 0.8,
    }
    for name in targets:
        targets[name]["met"] = met[name]
    return {"targets": targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated studies per figure")
    parser.add_argument("--small", action="store_true", help="few runs (a smoke test)")
    args = parser.parse_args()
    runs = 60 if args.small else args.runs
    power_runs = 40 if args.small else 2 * runs
    started = time.perf_counter()
    figures: dict = {"ppi": {}}
    humans_only = labels_for_power(None, judge=False, runs=power_runs, seed=1)
    for i, agreement in enumerate(AGREEMENTS):
        section = ppi_section(runs, agreement, seed=10 + i)
        needed = labels_for_power(agreement, judge=True, runs=power_runs, seed=1)
        section["labels_ratio"] = needed / humans_only
        section["labels"] = needed
        figures["ppi"][f"{agreement:g}"] = section
    figures["humans_only_labels"] = humans_only
    figures["biased_judge"] = {"coverage": ppi_section(runs, None, seed=20)["coverage"]}
    figures["sequential"] = sequential_section()
    figures["simulations"] = runs
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures |= targets_section(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
