"""Rubric iteration with a held-out split: the dev/test split (recorded once), `--split` on judge
and stats, rubric versions compared on dev with a paired CI, looks at test counted, and few-shot
examples refused when they come from test."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from review_app import migrations, stats
from review_app.cli import main
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import calibration, disagreements, judging, rubric_iteration
from review_app.services.judging import DEMO_RUBRIC
from review_app.store import Store
from tests.acting import acting, looking, person
from tests.conftest import write


def _split(store, settings, share=0.3, seed=5):
    return rubric_iteration.make_split(acting(store, "demo", "ann", settings=settings), share, seed)


def test_split_is_seeded_stratified_by_category_and_keeps_items_whole(demo_store, settings):
    labelled = demo_store.calibration.labelled_pairs(demo_store.studies.require_study("demo")["id"])
    first = rubric_iteration.assign_split(labelled, 0.3, 5)
    assert first == rubric_iteration.assign_split(labelled, 0.3, 5)
    assert first != rubric_iteration.assign_split(labelled, 0.3, 6)
    items = {}
    for row in labelled:
        items.setdefault((row["category"], row["item_key"]), set()).add(first[row["pair_id"]])
    assert all(len(parts) == 1 for parts in items.values())  # an item is on one side only
    per_category = Counter()
    test_per_category = Counter()
    for (category, _), parts in items.items():
        per_category[category] += 1
        test_per_category[category] += "test" in parts
    for category, n in per_category.items():
        assert test_per_category[category] == min(max(round(0.3 * n), 1), n - 1)


def test_split_is_recorded_once_with_an_audit_entry(demo_store, settings, cli_admin):
    summary = _split(demo_store, settings)
    assert summary.n_dev + summary.n_test == len(
        demo_store.calibration.labelled_pairs(demo_store.studies.require_study("demo")["id"])
    )
    assert summary.n_test > 0 and summary.n_dev > summary.n_test
    before = demo_store.table_counts()
    with pytest.raises(Conflict, match="already split"):
        _split(demo_store, settings, seed=9)
    assert demo_store.table_counts() == before
    study_id = demo_store.studies.require_study("demo")["id"]
    entries = [
        e for e in demo_store.audit.audit_entries(study_id) if e["action"] == "split comparisons"
    ]
    assert len(entries) == 1 and json.loads(entries[0]["detail"])["seed"] == 5
    rubric_iteration.record_test_look(
        demo_store, "demo", ["example-llm-judge"], person(demo_store, "ann")
    )
    for sql in (
        "UPDATE comparison_splits SET part = 'dev'",
        "DELETE FROM comparison_splits",
        "DELETE FROM test_looks",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            demo_store.db.execute(sql)


@pytest.mark.parametrize("share", [0, 1, -0.5, 1.5])
def test_a_test_share_outside_zero_and_one_is_refused(demo_store, settings, share):
    with pytest.raises(InputError, match="between 0 and 1"):
        _split(demo_store, settings, share=share)
    assert rubric_iteration.split_summary(demo_store, "demo") is None


def test_migrations_apply_by_number_and_tolerate_a_missing_number(tmp_path, monkeypatch):
    numbers = sorted(n for n, _, _ in migrations.MIGRATIONS)
    # A workspace written by a version that knew 10 but not yet 9, listed out of order...
    without_9 = [m for m in reversed(migrations.MIGRATIONS) if m[0] != 9]
    monkeypatch.setattr("review_app.store.base.MIGRATIONS", without_9)
    store = Store.open(tmp_path / "w.db")
    try:
        applied = [r["version"] for r in store._rows("SELECT version FROM _migrations")]
        assert sorted(applied) == [n for n in numbers if n != 9]
    finally:
        store.close()
    # ...gets 9 when a version that knows it opens the workspace, and nothing else again.
    monkeypatch.setattr("review_app.store.base.MIGRATIONS", migrations.MIGRATIONS)
    store = Store.open(tmp_path / "w.db")
    try:
        applied = [r["version"] for r in store._rows("SELECT version FROM _migrations")]
        assert sorted(applied) == numbers and store.schema_version() == numbers[-1]
    finally:
        store.close()


def test_stats_and_judge_take_a_split(demo_store, settings, capsys, cli_admin, monkeypatch):
    with pytest.raises(NotFound, match="calibrate split"):
        calibration.calibration_report(looking(demo_store, "demo", settings), split="dev")
    summary = _split(demo_store, settings)
    dev = calibration.calibration_report(looking(demo_store, "demo", settings), split="dev")
    assert dev.document()["n_comparisons"] == summary.n_dev
    assert main(["stats", "--study", "demo", "--split", "test", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["n_comparisons"] == summary.n_test and document["split"] == "test"
    assert rubric_iteration.test_look_count(demo_store, "demo") == 1
    # A split study's statistics are dev's unless asked; all of them include test's: a look.
    assert main(["stats", "--study", "demo", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["split"] == "dev" and document["n_comparisons"] == summary.n_dev
    assert rubric_iteration.test_look_count(demo_store, "demo") == 1
    assert main(["stats", "--study", "demo", "--split", "all"]) == 0
    assert "test looked at 2 times" in capsys.readouterr().out
    assert rubric_iteration.test_look_count(demo_store, "demo") == 2

    plan = judging.plan_judge_run(
        demo_store, settings, "demo", DEMO_RUBRIC, "openai/gpt-4o-mini", split="dev"
    )
    assert plan.n_pairs == summary.n_dev and plan.n_total == 2 * summary.n_dev
    parts = demo_store.calibration.split_parts(demo_store.studies.require_study("demo")["id"])
    assert {parts.get(c.pair_id) for c in plan.calls} == {"dev"}
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # the dry run checks the judge can start
    assert main(["judge", "--study", "demo", "--rubric", str(DEMO_RUBRIC), "--judge",
                 "openai/gpt-4o-mini", "--split", "test", "--dry-run"]) == 0  # fmt: skip
    assert f"({summary.n_test} test pairs" in capsys.readouterr().out


def test_calibrate_commands(demo_store, capsys, cli_admin):
    assert main(["calibrate", "split", "--study", "demo", "--seed", "3"]) == 0
    assert "dev and" in capsys.readouterr().out
    assert main(["calibrate", "split", "--study", "demo"]) == 1
    assert "already split" in capsys.readouterr().err
    assert main(["calibrate", "compare", "--study", "demo", "--judges",
                 "example-llm-judge,baseline/longest", "--json"]) == 0  # fmt: skip
    compared = json.loads(capsys.readouterr().out)
    assert compared["split"] == "dev" and compared["difference"]["ci"] is not None
    assert main(["calibrate", "confirm", "--study", "demo", "--judge", "example-llm-judge"]) == 0
    assert "test looked at 1 times" in capsys.readouterr().out
    assert main(["calibrate", "show", "--study", "demo", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["test_looks"] == 1 and shown["split"]["seed"] == 3
    assert main(["calibrate", "compare", "--study", "demo", "--judges", "one"]) == 1
    assert "exactly 2 judges" in capsys.readouterr().err


def test_version_comparison_on_dev_lists_changed_verdicts_blinded(demo_store, settings):
    _split(demo_store, settings)
    result = rubric_iteration.compare_versions(
        demo_store,
        "demo",
        "example-llm-judge",
        "baseline/longest",
        settings=settings,
        actor=person(demo_store),
    )
    c = result.comparison
    assert c.difference.value == pytest.approx(c.agreement_b.value - c.agreement_a.value)
    lo, hi = c.difference.ci
    assert lo <= c.difference.value <= hi
    expected = (
        "baseline/longest agrees with the humans more"
        if lo > 0
        else "example-llm-judge agrees with the humans more"
        if hi < 0
        else "no clear difference on dev"
    )
    assert result.reading().startswith(expected)
    assert result.reading() in result.line()
    study_id = demo_store.studies.require_study("demo")["id"]
    parts = demo_store.calibration.split_parts(study_id)
    key = demo_store.calibration.label_key()
    labels = {disagreements.row_label(key, p): p for p in parts}
    # Sealed: no comparison id or item to join to `export pairs`, only a keyed label.
    assert set(result.changed["pair_id"]) <= set(labels)
    assert set(result.changed["item_key"].map(labels).map(parts)) == {"dev"}
    assert len(result.changed) > 0
    assert not result.outcomes_visible
    shown = set(result.changed[["verdict_a", "verdict_b", "human_majority"]].stack()) - {None}
    assert shown <= {"A", "B", "tie"}
    assert set(result.changed["system_x"]) == {"A"}
    assert (result.changed["verdict_a"] != result.changed["verdict_b"]).all()
    assert rubric_iteration.test_look_count(demo_store, "demo") == 0  # dev is no look at test


def _frames(n_items: int, rng: np.random.Generator, acc_a: float, acc_b: float, votes: int = 3):
    """Synthetic comparisons with a latent truth, `votes` noisy human votes (80% right) and two
    judges right with the given probabilities, independently."""
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n_items),
            "item_key": [f"i{i}" for i in range(n_items)],
            "category": "c",
            "system_x": "m",
            "system_y": "n",
            "len_x": 10,
            "len_y": 10,
        }
    )
    truth = rng.integers(0, 2, n_items)
    labels = np.array(["x", "y"])
    vote_rows, verdict_rows = [], []
    for p in range(n_items):
        for r in range(votes):
            right = rng.random() < 0.8
            vote_rows.append((p, f"r{r}", labels[truth[p] if right else 1 - truth[p]], None))
        for judge, acc in (("a", acc_a), ("b", acc_b)):
            right = rng.random() < acc
            verdict_rows.append((judge, p, None, labels[truth[p] if right else 1 - truth[p]]))
    votes_frame = pd.DataFrame(vote_rows, columns=["pair_id", "reviewer", "outcome", "shown_left"])
    verdicts = pd.DataFrame(verdict_rows, columns=["judge", "pair_id", "first", "outcome"])
    verdicts["cost"], verdicts["latency_ms"] = 0.0, np.nan
    return pairs, votes_frame, verdicts


def test_paired_difference_ci_rarely_excludes_zero_for_equal_judges_and_finds_a_real_gain():
    rng = np.random.default_rng(2026)
    sims = 150

    def excludes_zero(acc_b: float) -> float:
        hits = 0
        for s in range(sims):
            pairs, votes, verdicts = _frames(120, rng, 0.75, acc_b)
            d = stats.compare_judges(pairs, votes, verdicts, "a", "b", seed=s, n_boot=400)
            hits += d.difference.ci[0] > 0 or d.difference.ci[1] < 0
        return hits / sims

    assert 0.01 <= excludes_zero(0.75) <= 0.10  # nominal 5%
    assert excludes_zero(0.92) >= 0.8  # 17 points better is found


def _rubric_with_example(
    tmp_path, prompt: str, response_a: str = "Short answer A.", file: str = "leaky.yaml"
) -> str:
    text = (DEMO_RUBRIC.read_text(encoding="utf-8")).split("examples:")[0]
    text = text.replace("name: general-pairwise", "name: leaky")
    text += (
        "examples:\n"
        "  - prompt: What is the boiling point of water?\n"
        "    response_a: 212 F.\n"
        "    response_b: 100 F.\n"
        "    answer: {explanation: A is right., winner: A}\n"
        f"  - prompt: {json.dumps(prompt)}\n"
        f"    response_a: {json.dumps(response_a)}\n"
        "    response_b: Another answer.\n"
        "    answer: {explanation: A is better., winner: A}\n"
    )
    return str(write(tmp_path / file, text))


def test_a_rubric_whose_example_comes_from_test_is_refused(demo_store, settings, tmp_path):
    _split(demo_store, settings)
    study_id = demo_store.studies.require_study("demo")["id"]
    parts = demo_store.calibration.split_parts(study_id)
    pairs = demo_store.frames.pairs_frame(study_id)
    test_row = pairs[pairs["pair_id"].map(parts) == "test"].iloc[0]
    dev_row = pairs[pairs["pair_id"].map(parts) == "dev"].iloc[0]

    leaky = _rubric_with_example(tmp_path, test_row["prompt"])
    with pytest.raises(InputError) as refused:
        judging.plan_judge_run(demo_store, settings, "demo", leaky, "openai/gpt-4o-mini")
    message = str(refused.value)
    assert "leaky.yaml:" in message and "examples[1].prompt" in message
    assert test_row["item_key"] in message and "dev comparisons only" in message
    assert "\n" not in message
    line = int(message.split("leaky.yaml:")[1].split(":")[0])
    assert "- prompt:" in open(leaky, encoding="utf-8").read().splitlines()[line - 1]

    copied_output = _rubric_with_example(
        tmp_path, "A new prompt", test_row["output_x"], "copied.yaml"
    )
    if len(test_row["output_x"]) >= 40:
        with pytest.raises(InputError, match=r"examples\[1\]\.response_a"):
            judging.plan_judge_run(
                demo_store, settings, "demo", copied_output, "openai/gpt-4o-mini"
            )
    from_dev = _rubric_with_example(tmp_path, dev_row["prompt"], file="dev.yaml")
    plan = judging.plan_judge_run(demo_store, settings, "demo", from_dev, "openai/gpt-4o-mini")
    assert plan.n_missing > 0
    assert main(["judge", "--study", "demo", "--rubric", leaky, "--judge", "openai/gpt-4o-mini",
                 "--dry-run"]) == 1  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["calibrate", "show", "--study", "s"],
        ["calibrate", "compare", "--study", "s", "--judges", "a,b"],
        ["calibrate", "confirm", "--study", "s", "--judge", "a"],
        ["stats", "--study", "s", "--split", "test"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_calibrate_commands_never_create_a_workspace(tmp_path, capsys, argv):
    missing = tmp_path / "typo" / "workspace.db"
    assert main(["--db", str(missing), *argv]) == 1
    assert "no workspace at" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_comparing_on_test_is_a_recorded_look(demo_store, settings):
    _split(demo_store, settings)
    rubric_iteration.compare_versions(
        demo_store,
        "demo",
        "example-llm-judge",
        "baseline/longest",
        "test",
        settings,
        actor=person(demo_store, "ann"),
    )
    (look,) = demo_store.calibration.test_looks(demo_store.studies.require_study("demo")["id"])
    assert look["looked_by"] == "ann"
    assert look["judges"] == ["example-llm-judge", "baseline/longest"]
