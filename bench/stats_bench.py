"""Benchmark: the full `stats --json` computation on a large synthetic study.

100,000 votes and 200,000 verdicts over 50,000 comparisons, baseline judges synthesized for every
pair, 1,000 bootstrap resamples. Target: <= 5 s on a 2-core machine. The last line of output is
one JSON object with the figures.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from review_app import stats

N_PAIRS = 50_000
VOTES_PER_PAIR = 2
JUDGES = ("gpt-judge/v1", "claude-judge/v1")
CATEGORIES = ("target", "reasoning", "instructions", "formatting", "safety")


def synthetic_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pairs, votes and verdicts frames shaped like the store's, with realistic noise."""
    rng = np.random.default_rng(seed)
    pair_ids = np.arange(1, N_PAIRS + 1)
    len_x = rng.integers(0, 2000, N_PAIRS)
    len_y = rng.integers(0, 2000, N_PAIRS)
    system_y = np.where(pair_ids % 2 == 0, "frontier", "finetuned")
    pairs = pd.DataFrame(
        {
            "pair_id": pair_ids,
            "item_key": [f"item-{i // 2}" for i in pair_ids],
            "category": np.array(CATEGORIES)[pair_ids % len(CATEGORIES)],
            "system_x": np.where(pair_ids % 2 == 0, "finetuned", "base"),
            "system_y": system_y,
            "prompt": "p",
            "reference": None,
            # Short stand-ins: only the lengths matter to the statistics and the baselines.
            "output_x": [("x" * 3) * (n % 7) for n in len_x],
            "output_y": [("y" * 3) * (n % 7) for n in len_y],
            "len_prompt": 1,
            "len_x": len_x,
            "len_y": len_y,
        }
    )
    truth = rng.choice(np.array(["x", "y", "tie"]), size=N_PAIRS, p=[0.45, 0.45, 0.10])

    vote_pair = np.repeat(pair_ids, VOTES_PER_PAIR)
    vote_truth = np.repeat(truth, VOTES_PER_PAIR)
    noise = rng.random(len(vote_pair)) < 0.2
    outcome = np.where(
        noise, rng.choice(np.array(["x", "y", "tie", "both_bad"]), len(vote_pair)), vote_truth
    )
    reviewer = rng.integers(0, 40, len(vote_pair))
    # Two votes on one pair never come from the same reviewer.
    reviewer[1::2] = (reviewer[0::2] + 1 + rng.integers(0, 39, N_PAIRS)) % 40
    votes = pd.DataFrame(
        {
            "vote_id": np.arange(1, len(vote_pair) + 1),
            "pair_id": vote_pair,
            "reviewer": [f"reviewer-{r}" for r in reviewer],
            "winner": outcome,
            "outcome": outcome,
            "shown_left": np.where(rng.random(len(vote_pair)) < 0.5, "base", "finetuned"),
            "rationale": "",
            "created_at": "2026-01-01T00:00:00",
        }
    )

    frames = []
    for judge in JUDGES:
        for first in ("x", "y"):
            flip = rng.random(N_PAIRS) < 0.15
            out = np.where(flip, rng.choice(np.array(["x", "y", "tie"]), N_PAIRS), truth)
            out = np.where(rng.random(N_PAIRS) < 0.01, None, out)
            frames.append(
                pd.DataFrame(
                    {
                        "verdict_id": 0,
                        "run_id": JUDGES.index(judge) + 1,
                        "judge": judge,
                        "pair_id": pair_ids,
                        "first_system": np.where(first == "x", pairs["system_x"], system_y),
                        "first": first,
                        "winner": out,
                        "outcome": out,
                        "explanation": "",
                        "raw_text": "",
                        "parse_error": None,
                        "cost": 0.0004,
                        "latency_ms": 900.0,
                        "tokens_in": 800,
                        "tokens_out": 60,
                    }
                )
            )
    verdicts = pd.concat(frames, ignore_index=True)
    verdicts["verdict_id"] = np.arange(1, len(verdicts) + 1)
    return pairs, votes, verdicts


def main() -> None:
    pairs, votes, verdicts = synthetic_frames()
    start = time.perf_counter()
    baselines = stats.baseline_verdicts(pairs)
    baseline_seconds = time.perf_counter() - start
    report = stats.study_report(pairs, votes, pd.concat([verdicts, baselines], ignore_index=True))
    document = json.dumps(report)
    seconds = time.perf_counter() - start
    print(f"judges: {[j['judge'] for j in report['judges']]}")
    print(f"categories: {sorted(report['by_category'])}")
    print(
        json.dumps(
            {
                "votes": len(votes),
                "verdicts": len(verdicts),
                "baseline_verdicts": len(baselines),
                "comparisons": len(pairs),
                "bootstrap_resamples": 1000,
                "baseline_seconds": round(baseline_seconds, 3),
                "json_bytes": len(document),
                "seconds": round(seconds, 3),
                "target_seconds": 5,
            }
        )
    )


if __name__ == "__main__":
    main()
