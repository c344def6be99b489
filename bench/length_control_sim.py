"""Benchmark: coverage of the length-controlled win rate at parity, and what it says without
overlap (docs/statistics.md has the table).

Each simulated study: reviewers prefer the longer answer (logit 1.2 x tanh(d / 200)), the two
systems are equal at equal length, 10% ties; d ~ Normal(shift x 200, 200) characters, so the
shift sets the share of comparisons on the minority side. `no_overlap`: the candidate is always
300-600 characters longer. Figures per design: studies estimated, null, mean raw and
length-controlled win rate, mean CI width, coverage of 0.5 by the 95% CI, and how often each
one-sided 95% bound excludes 0.5. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from review_app import ranking

# (name, items, votes per comparison, shift of the length difference in standard deviations)
DESIGNS = (
    ("minority 11%, 30 items", 30, 1, 1.25),
    ("minority 16%, 30 items", 30, 1, 1.0),
    ("minority 11%, 100 items", 100, 1, 1.25),
    ("minority 16%, 100 items", 100, 1, 1.0),
    ("minority 31%, 100 items", 100, 1, 0.5),
    ("minority 31%, 40 items x 3 votes", 40, 3, 0.5),
    ("minority 50%, 50 items", 50, 1, 0.0),
)
SCALE = 200.0


def study(rng: np.random.Generator, items: int, votes: int, len_diff: np.ndarray) -> pd.DataFrame:
    p = 1 / (1 + np.exp(-1.2 * np.tanh(len_diff / SCALE)))
    item = np.repeat(np.arange(items), votes)
    p = np.repeat(p, votes)
    tie = rng.random(len(item)) < 0.1
    score = np.where(tie, 0.5, (rng.random(len(item)) < p).astype(float))
    return pd.DataFrame({"item": item, "score": score, "len_diff": np.repeat(len_diff, votes)})


def run(rng, items, votes, draw, sims, n_boot) -> dict:
    values, raw, widths, covered, low_err, high_err, nulls = [], [], [], 0, 0, 0, 0
    for seed in range(sims):
        obs = study(rng, items, votes, draw(rng, items))
        raw.append(obs.score.mean())
        lc = ranking.length_controlled_win_rate(obs, seed=seed, n_boot=n_boot)
        if lc.value is None:
            nulls += 1
            continue
        values.append(lc.value)
        widths.append(lc.ci[1] - lc.ci[0])
        covered += lc.ci[0] <= 0.5 <= lc.ci[1]
        low_err += lc.bounds[0] > 0.5
        high_err += lc.bounds[1] < 0.5
    m = len(values)
    share = (lambda k: round(k / m, 3)) if m else (lambda k: None)
    # The target: 95% coverage and at most 5% error on each one-sided bound, up to two Monte
    # Carlo standard errors over the studies estimated.
    slack = 2 * np.sqrt(0.05 * 0.95 / m) if m else 0.0
    met = m == 0 or (covered / m >= 0.95 - slack and max(low_err, high_err) / m <= 0.05 + slack)
    return {
        "estimated": m,
        "null": nulls,
        "raw_win_rate": round(float(np.mean(raw)), 3),
        "lc_win_rate": round(float(np.mean(values)), 3) if m else None,
        "ci_width": round(float(np.mean(widths)), 3) if m else None,
        "coverage": share(covered),
        "lower_bound_error": share(low_err),
        "upper_bound_error": share(high_err),
        "met": bool(met),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=300)
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    figures = {}
    for name, items, votes, shift in DESIGNS:
        draw = lambda r, n, shift=shift: r.normal(shift * SCALE, SCALE, n)  # noqa: E731
        figures[name] = run(rng, items, votes, draw, args.sims, args.n_boot)
        print(name, json.dumps(figures[name]), flush=True)
    figures["no_overlap, 100 items"] = run(
        rng, 100, 1, lambda r, n: r.uniform(300, 600, n), args.sims, args.n_boot
    )
    target = (
        "95% CI coverage >= 0.95 and each one-sided bound's error <= 0.05, up to two Monte "
        "Carlo standard errors; without overlap, every study null"
    )
    # Without overlap a figure would be a wrong one: every study must say "not measurable".
    no_overlap = figures["no_overlap, 100 items"]
    met = no_overlap["estimated"] == 0 and all(
        f["met"] for name, f in figures.items() if name != "no_overlap, 100 items"
    )
    print(
        json.dumps(
            {"designs": figures, "simulations": args.sims, "target": target, "target_met": met}
        )
    )


if __name__ == "__main__":
    main()
