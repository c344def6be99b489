"""Baseline judges: the verdicts the app computes for a study without a stored baseline run are
exactly what `baseline_choice` (the function a baseline run calls) decides, call by call."""

from __future__ import annotations

import ast
import asyncio

import numpy as np
import pandas as pd

from judge.providers.base import JudgeRequest
from judge.providers.baseline import BaselineProvider, baseline_choice
from review_app import baselines, stats
from tests.stats_frames import make_pairs, make_verdicts, no_votes


def test_baseline_verdicts_cover_both_orders_for_every_baseline():
    pairs = make_pairs(3, lengths={1: (300, 100), 2: (100, 100), 3: (50, 90)})
    rows = baselines.computed_verdicts(pairs)
    assert list(rows.columns) == stats.VERDICT_COLUMNS
    assert len(rows) == 3 * 2 * len(baselines.BASELINES)
    combined = stats.combine_verdicts(pairs, rows).set_index(["judge", "pair_id"])["outcome"]
    assert combined[("baseline/longest", 1)] == "x"
    assert combined[("baseline/longest", 2)] == "tie"
    assert combined[("baseline/longest", 3)] == "y"
    assert combined[("baseline/shortest", 1)] == "y"
    # "first" always picks the first shown, so its two orders always disagree.
    assert all(combined.xs("baseline/first", level="judge") == "tie")
    longest = rows[(rows["judge"] == "baseline/longest") & (rows["pair_id"] == 1)]
    assert set(longest["winner"]) == {"base"}


def test_baseline_verdicts_are_what_baseline_choice_says_for_every_call():
    rng = np.random.default_rng(4)
    lengths = {i: (int(rng.integers(0, 5)), int(rng.integers(0, 5))) for i in range(1, 61)}
    pairs = make_pairs(60, lengths=lengths)
    rows = baselines.computed_verdicts(pairs, seed=9)
    systems = {"x": "base", "y": "finetuned"}
    for row in rows.itertuples():
        pair = pairs.set_index("pair_id").loc[row.pair_id]
        first_len = pair["len_" + row.first]
        second_len = pair["len_" + ("y" if row.first == "x" else "x")]
        key = f"{row.pair_id}:{systems[row.first]}"
        choice = baseline_choice(
            row.judge.removeprefix("baseline/"), first_len, second_len, key, seed=9
        )
        expected = {"first": row.first, "second": "y" if row.first == "x" else "x"}.get(
            choice, "tie"
        )
        assert row.outcome == expected, row
        assert row.first_system == systems[row.first]


def test_random_baseline_is_reproducible_per_seed():
    pairs = make_pairs(40)
    first = baselines.computed_verdicts(pairs, names=["random"], seed=1)
    again = baselines.computed_verdicts(pairs, names=["random"], seed=1)
    other = baselines.computed_verdicts(pairs, names=["random"], seed=2)
    assert first["outcome"].tolist() == again["outcome"].tolist()
    assert first["outcome"].tolist() != other["outcome"].tolist()
    assert set(first["outcome"]) == {"x", "y"}


def test_baselines_are_listed_after_real_judges_in_a_fixed_order():
    pairs = make_pairs(2)
    verdicts = pd.concat(
        [baselines.computed_verdicts(pairs), make_verdicts(pairs, [("zeta", 1, None, "x")])],
        ignore_index=True,
    )
    order = baselines.order_judges(verdicts["judge"])
    assert order == ["zeta"] + [f"baseline/{name}" for name in baselines.BASELINES]
    labels = [j.judge for j in stats.analyse(pairs, no_votes(), verdicts, judge_order=order).judges]
    assert labels == order


def test_the_provider_decides_by_the_lengths_of_the_texts_it_is_shown():
    provider = BaselineProvider("longest")
    request = JudgeRequest(
        messages=[],
        schema_name="verdict",
        schema={},
        max_tokens=10,
        temperature=0.0,
        timeout_s=1.0,
        first_text="a" * 10,
        second_text="b" * 3,
        key="1:x",
        seed=0,
    )
    completion = asyncio.run(provider.complete(request))
    assert completion.choice == baseline_choice("longest", 10, 3, "1:x") == "first"


def test_statistics_import_nothing_from_the_judge_package():
    tree = ast.parse(open(stats.__file__, encoding="utf-8").read())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported and not [name for name in imported if name.split(".")[0] == "judge"]
