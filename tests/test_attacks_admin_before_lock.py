"""Attacks by an admin before the lock who wants to know which system the humans prefer: joining
a blinded screen's rows to an export, an oracle judge or known answers that read as win rates,
a length baseline that names the longer side, a shadow study over a copy of the eval set. Each
must be sealed (nothing to join on) or recorded in their name and listed in the report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from review_app import cli, report
from review_app.services import data, disagreements, quality, signoff, studies, thresholds
from review_app.services.early_looks import LOOK
from tests.acting import acting, lock_on_win_rate, looking, person, token_for
from tests.conftest import write

DEMO_OUTPUTS = Path(__file__).resolve().parents[1] / "data" / "demo" / "outputs.jsonl"


def _export_pairs(tmp_path) -> pd.DataFrame:
    out = tmp_path / "pairs.csv"
    args = ["export", "pairs", "--study", "demo", "--format", "csv", "--output", str(out)]
    assert cli.main(args) == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def _looks(store, study: str = "demo") -> list[dict]:
    study_id = store.studies.require_study(study)["id"]
    return [e for e in store.audit.audit_entries(study_id) if e["action"] == LOOK]


def _stats(capsys, *token: str) -> dict:
    args = ["--token", token[0]] if token else []
    assert cli.main([*args, "stats", "--study", "demo", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_disagreements_csv_shares_nothing_with_export_pairs(demo_store, tmp_path):
    """The attack: the CSV's pair_id (or item, or either output) joined to `export pairs` put the
    system names back on A and B, every vote recovered by system."""
    frame = disagreements.disagreements(demo_store, "demo")
    assert len(frame) > 10
    sealed = pd.read_csv(
        io.StringIO(disagreements.disagreements_csv(frame)), dtype=str, keep_default_na=False
    )
    pairs = _export_pairs(tmp_path)
    cells = set(sealed.to_numpy().ravel())
    for column in ("item_id", "prompt", "output_x", "output_y"):
        assert not cells & set(pairs[column]) - {""}, column
    keys = set(sealed["pair_id"]) | set(sealed["item_key"])
    assert not keys & (set(pairs["pair_id"]) | set(pairs["item_id"]))
    # No category or exact length to narrow a comparison down either.
    assert set(sealed["category"]) == {disagreements.HIDDEN}
    assert set(sealed["len_x"]) == set(sealed["len_y"]) == {""}
    assert {int(d) for d in sealed["length_difference"]} <= set(disagreements.LENGTH_BUCKETS)
    # Rows of one comparison still share their label, so a judge's rows can be read together.
    assert sealed.groupby("pair_id")["judge"].nunique().max() > 1


def test_calibrate_compare_with_a_length_baseline_shares_nothing_with_export_pairs(
    demo_store, tmp_path, capsys
):
    """baseline/longest's A or B is the longer side: with the exported lengths, the pair_id of
    each changed comparison named the system behind every human majority."""
    args = ["calibrate", "compare", "--study", "demo", "--split", "all", "--json"]
    assert cli.main([*args, "--judges", "example-llm-judge,baseline/longest"]) == 0
    changed = pd.DataFrame(json.loads(capsys.readouterr().out)["changed"])
    assert len(changed) > 10
    pairs = _export_pairs(tmp_path)
    exported = set(pairs["pair_id"]) | set(pairs["item_id"])
    assert not set(changed["pair_id"].astype(str)) & exported
    assert not set(changed["item_key"].astype(str)) & exported
    assert set(changed["category"]) == {disagreements.HIDDEN}
    # Not in the study's order either.
    assert list(changed["pair_id"]) == sorted(changed["pair_id"])


def test_a_length_baseline_s_verbosity_gap_is_withheld_before_the_lock(demo_store, capsys):
    """baseline/longest's p_longer is 1, so one minus its verbosity gap was the humans' withheld
    p_longer (nearly the shorter system's loss rate)."""
    document = _stats(capsys, token_for(demo_store, "eve"))
    gaps = {j["judge"]: j["verbosity_gap"]["value"] for j in document["judges"]}
    assert gaps["baseline/longest"] is None and gaps["baseline/shortest"] is None
    assert gaps["example-llm-judge"] is not None


def _oracle(demo_store, tmp_path) -> None:
    """Verdicts that name the candidate on every comparison it is in, imported as a judge."""
    study_id = demo_store.studies.require_study("demo")["id"]
    lines = ["item_id,system_a,system_b,judge,winner"]
    for p in demo_store.frames.pairs_frame(study_id).itertuples():
        if "finetuned" in (p.system_x, p.system_y):
            lines.append(f"{p.item_key},{p.system_x},{p.system_y},oracle,finetuned")
    path = write(tmp_path / "oracle.csv", "\n".join(lines) + "\n")
    data.import_verdicts(demo_store, path, "demo", actor=person(demo_store))


def test_an_imported_oracle_judge_s_agreement_is_a_recorded_look(demo_store, tmp_path, capsys):
    """Its agreement with the humans is the humans' win rate for the candidate: without a link
    it is left out, with one it is shown as a look in that person's name, and the report lists
    it under "seen before the lock"."""
    _oracle(demo_store, tmp_path)
    # Its disagreements with the majority would count the candidate's losses: left out.
    assert "oracle" not in set(disagreements.disagreements(demo_store, "demo")["judge"])
    anonymous = _stats(capsys)
    assert "oracle" not in {j["judge"] for j in anonymous["judges"]}
    assert not _looks(demo_store)
    assert cli.main(["stats", "--study", "demo"]) == 0
    assert "oracle: left out until the lock (its verdicts were imported" in capsys.readouterr().out

    eve = token_for(demo_store, "eve")
    shown = {j["judge"]: j for j in _stats(capsys, eve)["judges"]}
    agreement = shown["oracle"]["agreement"]["with_ties"]["value"]
    (look,) = _looks(demo_store)
    assert look["actor"] == "eve"
    figures = {f["judge"]: f for f in json.loads(look["detail"])["figures"]}
    assert figures["oracle"]["agreement_with_ties"]["value"] == agreement
    assert figures["oracle"]["why"] == "its verdicts were imported"
    _stats(capsys, eve)  # the same figures again: nothing new to record
    assert len(_looks(demo_store)) == 1

    lock_on_win_rate(demo_store)
    document = signoff.build_report(looking(demo_store, "demo"))
    (listed,) = document["seen_before_lock"]["looks"]
    assert listed["actor"] == "eve" and listed["what"] == "judge agreement"
    text = report.render_markdown(document)
    assert "### Seen before the lock" in text and "oracle agreement" in text


def test_a_judge_favouring_one_system_almost_always_is_a_recorded_look(demo_store, tmp_path):
    """A judge run in the workspace (not imported) whose verdicts name one system on more than
    90% of its comparisons reads as that system's win rate too."""
    study_id = demo_store.studies.require_study("demo")["id"]
    pairs = demo_store.frames.pairs_frame(study_id)
    with demo_store.transaction():
        run = demo_store.judging.insert_judge_run(
            study_id, "always", "openai/always", None, "", {}, "openai/always"
        )
        demo_store.judging.insert_verdicts(
            [
                {
                    "run_id": run,
                    "pair_id": int(p.pair_id),
                    "first_system": first,
                    "winner": "finetuned",
                    "created_at": "2026-01-01T00:00:00Z",
                }
                for p in pairs.itertuples()
                if "finetuned" in (p.system_x, p.system_y)
                for first in (p.system_x, p.system_y)
            ]
        )
    from review_app.services import calibration

    hidden = calibration.calibration_report(acting(demo_store, "demo", "rex", role="reviewer"))
    assert hidden.calibration.overall.judge("always") is None
    assert any("favour one system" in w for w in hidden.warnings)
    shown = calibration.calibration_report(acting(demo_store, "demo", "eve"))
    assert shown.calibration.overall.judge("always") is not None
    (look,) = _looks(demo_store)
    assert look["actor"] == "eve"


def test_known_answer_accuracy_before_the_lock_is_a_recorded_look(demo_store, capsys, settings):
    """Known answers set to the candidate on every voted item make each reviewer's accuracy read
    the candidate's wins; removing them afterwards must not erase that it was seen."""
    admin = acting(demo_store, "demo", "eve")
    study_id = admin.id
    voted = demo_store.frames.votes_frame(study_id)["pair_id"].unique()
    pairs = demo_store.frames.pairs_frame(study_id).set_index("pair_id").loc[voted]
    marked = [
        (p.item_key, f"{p.system_x}:{p.system_y}")
        for p in pairs.itertuples()
        if "finetuned" in (p.system_x, p.system_y)
    ][:20]
    for item, compare in marked:
        quality.set_known_answer(admin, item, compare, "finetuned")

    assert cli.main(["reviewers", "stats", "--study", "demo", "--json"]) == 0
    anonymous = json.loads(capsys.readouterr().out)
    assert all(r["known_answer_accuracy"]["value"] is None for r in anonymous["reviewers"])
    assert not _looks(demo_store)

    eve = token_for(demo_store, "eve")
    assert cli.main(["--token", eve, "reviewers", "stats", "--study", "demo", "--json"]) == 0
    seen = json.loads(capsys.readouterr().out)
    accuracy = {r["reviewer"]: r["known_answer_accuracy"] for r in seen["reviewers"]}
    assert any(a["value"] is not None for a in accuracy.values())
    (look,) = _looks(demo_store)
    assert look["actor"] == "eve"
    assert json.loads(look["detail"])["what"] == "known-answer accuracy"

    for item, compare in marked:
        quality.remove_known_answer(admin, item, compare)
    lock_on_win_rate(demo_store)
    document = signoff.build_report(looking(demo_store, "demo"))
    (listed,) = document["seen_before_lock"]["looks"]
    assert listed["what"] == "known-answer accuracy" and listed["actor"] == "eve"
    assert "known-answer accuracy" in report.render_markdown(document)


def test_a_shadow_study_over_a_copy_of_the_eval_set_is_listed(demo_store, tmp_path):
    """A re-imported copy of the eval set (same content hash) under another name, a study over
    it with the same systems, locked first: its outcomes were this study's before this lock."""
    admin = person(demo_store)
    data.import_outputs(demo_store, DEMO_OUTPUTS, "demo-copy", actor=admin)
    studies.create_study(demo_store, "shadow", "demo-copy", [("finetuned", "base")], actor=admin)
    shadow = acting(demo_store, "shadow", "eve")
    thresholds.add_threshold(
        shadow, "human_win_rate", {"system_a": "finetuned", "system_b": "base"}, ">", 0.5
    )
    thresholds.lock_thresholds(acting(demo_store, "shadow", "eve"), "a small test study")
    lock_on_win_rate(demo_store)

    document = signoff.build_report(looking(demo_store, "demo"))
    assert [look["study"] for look in document["looks_before_lock"]] == ["shadow"]
    (listed,) = document["seen_before_lock"]["shadow_studies"]
    assert listed["study"] == "shadow" and listed["eval_set"] == "demo-copy"
    assert listed["systems"] == ["base", "finetuned"] and listed["locked_at"]
    assert "shadow study shadow over eval set demo-copy" in report.render_markdown(document)
