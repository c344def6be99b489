"""`export dataset`: the study's outputs, votes, verdicts and preference pairs as a folder that
pandas (Parquet) and Hugging Face `datasets.load_from_disk` read back as written; refused before
the lock; bad arguments are one line naming the option."""

from __future__ import annotations

import pandas as pd
import pytest

from review_app.cli import main
from review_app.errors import InputError, OutcomesHidden
from review_app.services import data, datasets, thresholds
from tests.acting import acting, lock_on_win_rate, reading
from tests.review_fixtures import STUDY, SYSTEM_X, SYSTEM_Y, make_study

SPLITS = ["outputs", "votes", "verdicts", "preferences"]


def load_hf(folder):
    """The folder as Hugging Face `datasets` loads it: a DatasetDict of its splits. Imported
    here, by the tests that read one: `datasets` costs every test process collecting this
    module about 0.35 s of CPU."""
    import datasets as hf

    loaded = hf.load_from_disk(str(folder))
    assert isinstance(loaded, hf.DatasetDict)
    return loaded


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def locked_demo(demo_store, settings):
    lock_on_win_rate(demo_store, settings)
    return demo_store


def test_parquet_round_trips_through_pandas(locked_demo, settings, tmp_path):
    out = tmp_path / "demo-dataset"
    written = datasets.export_dataset(reading(locked_demo, "demo", settings), "parquet", out)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.parquet" for s in SPLITS)
    frames = {s: pd.read_parquet(out / f"{s}.parquet") for s in SPLITS}
    assert written.rows == {s: len(f) for s, f in frames.items()}

    study_id = locked_demo.studies.require_study("demo")["id"]
    stored = locked_demo.catalog.study_outputs(study_id)
    outputs = frames["outputs"]
    assert len(outputs) == len(stored) > 0
    assert list(outputs["output"]) == list(stored["text"])
    assert (outputs["length"] == outputs["output"].str.len()).all()

    votes = list(data.export_rows(locked_demo, "votes", "demo"))
    assert len(frames["votes"]) == len(votes) > 0
    assert list(frames["votes"]["winner"]) == [v["winner"] for v in votes]
    assert len(frames["verdicts"]) == len(list(data.export_rows(locked_demo, "verdicts", "demo")))

    preferences = frames["preferences"]
    dpo = list(data.export_rows(locked_demo, "preferences", "demo", settings=settings))
    assert len(preferences) == len(dpo) > 0
    assert list(preferences.columns[:3]) == ["prompt", "chosen", "rejected"]
    assert list(preferences["chosen"]) == [r["chosen"] for r in dpo]
    assert (preferences["chosen_system"] != preferences["rejected_system"]).all()
    assert (preferences["n_chosen"] <= preferences["n_votes"]).all()
    assert (preferences["agreement"] == preferences["n_chosen"] / preferences["n_votes"]).all()
    assert preferences["category"].notna().all()
    for row in preferences.head(10).itertuples():
        on_pair = frames["votes"][
            (frames["votes"]["item_id"] == row.item_id)
            & frames["votes"]["system_a"].isin([row.chosen_system, row.rejected_system])
            & frames["votes"]["system_b"].isin([row.chosen_system, row.rejected_system])
        ]
        assert row.n_votes == len(on_pair)
        assert row.n_chosen == (on_pair["winner"] == row.chosen_system).sum()


def test_hf_folder_loads_with_datasets_and_matches_parquet(locked_demo, settings, tmp_path):
    ctx = reading(locked_demo, "demo", settings)
    datasets.export_dataset(ctx, "parquet", tmp_path / "pq")
    datasets.export_dataset(ctx, "hf", tmp_path / "hf")
    loaded = load_hf(tmp_path / "hf")
    assert list(loaded) == SPLITS
    for split in SPLITS:
        from_hf = loaded[split].to_pandas()
        from_parquet = pd.read_parquet(tmp_path / "pq" / f"{split}.parquet")
        pd.testing.assert_frame_equal(from_hf, from_parquet)
    assert loaded["preferences"].features["agreement"].dtype == "float64"
    assert loaded["outputs"].features["length"].dtype == "int64"


def test_refused_before_the_lock_and_nothing_is_written(demo_store, settings, tmp_path, capsys):
    out = tmp_path / "early"
    with pytest.raises(OutcomesHidden, match="hidden until its thresholds are locked"):
        datasets.export_dataset(reading(demo_store, "demo", settings), "hf", out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("workspace.db")]
    code, _, err = run(
        capsys, "export", "dataset", "--study", "demo", "--format", "parquet", "--out", str(out)
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "thresholds are locked" in err and "export pairs" in err
    assert not out.exists()


def test_a_locked_study_without_votes_has_empty_splits_with_their_columns(
    store, settings, tmp_path
):
    make_study(store, tmp_path)
    admin = acting(store, STUDY, settings=settings)
    thresholds.add_threshold(
        admin, "human_win_rate", {"system_a": SYSTEM_X, "system_b": SYSTEM_Y}, ">", 0.5
    )
    thresholds.lock_thresholds(acting(store, STUDY, settings=settings), "no votes yet")
    ctx = reading(store, STUDY, settings)
    written = datasets.export_dataset(ctx, "parquet", tmp_path / "pq")
    assert written.rows == {"outputs": 36, "votes": 0, "verdicts": 0, "preferences": 0}
    for split in ("votes", "preferences"):
        frame = pd.read_parquet(tmp_path / "pq" / f"{split}.parquet")
        assert frame.empty
        assert list(frame.columns) == datasets.DATASET_SPLITS[split].names
    datasets.export_dataset(ctx, "hf", tmp_path / "hf")
    loaded = load_hf(tmp_path / "hf")
    assert loaded.num_rows == written.rows
    assert loaded["preferences"].column_names == datasets.DATASET_SPLITS["preferences"].names


def test_an_empty_folder_is_filled_and_a_full_one_refused(locked_demo, settings, tmp_path):
    ctx = reading(locked_demo, "demo", settings)
    empty = tmp_path / "empty"
    empty.mkdir()
    datasets.export_dataset(ctx, "parquet", empty)
    assert (empty / "votes.parquet").exists()
    with pytest.raises(InputError, match=r"^--out .* is not empty"):
        datasets.export_dataset(ctx, "parquet", empty)
    with pytest.raises(InputError, match=r"^--format csv: export dataset writes parquet or hf"):
        datasets.export_dataset(ctx, "csv", tmp_path / "new")
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(InputError, match="is not a folder"):
        datasets.export_dataset(ctx, "hf", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep me"
    with pytest.raises(InputError, match="parent folder .* does not exist"):
        datasets.export_dataset(ctx, "hf", tmp_path / "missing" / "out")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["export", "dataset", "--study", "demo", "--out", "X"], "--format"),
        (["export", "dataset", "--study", "demo", "--format", "hf"], "--out"),
        (["export", "dataset", "--study", "demo", "--format", "csv", "--out", "X"], "--format csv"),
        (["export", "votes", "--study", "demo", "--format", "parquet"], "--format parquet"),
        (["export", "votes", "--study", "demo", "--out", "X"], "--out"),
        (
            [
                "export",
                "dataset",
                "--study",
                "demo",
                "--format",
                "hf",
                "--out",
                "X",
                "--source",
                "h",
            ],
            "--source",
        ),
        (["export", "dataset", "--study", "nope", "--format", "hf", "--out", "X"], "'nope'"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_option(
    locked_demo, tmp_path, capsys, monkeypatch, argv, named
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and named in line
    assert not (tmp_path / "X").exists()


def test_the_cli_says_what_it_wrote(locked_demo, tmp_path, capsys):
    out = tmp_path / "ds"
    code, _, err = run(
        capsys, "export", "dataset", "--study", "demo", "--format", "hf", "--out", str(out)
    )
    assert code == 0
    assert err.startswith(f"wrote study demo as hf to {out}: ") and " preferences" in err
    assert load_hf(out)["votes"].num_rows > 0
