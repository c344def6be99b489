"""Calibration end to end: `review-app stats`, the calibration services over a real workspace,
imported vs native data, the disagreement browser, and the two admin pages."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from review_app import baselines, stats
from review_app.cli import main
from review_app.errors import NotFound
from review_app.safe_markdown import render_output
from review_app.services import calibration, data, disagreements, people, study_data, thresholds
from review_app.services import studies as studies_service
from review_app.settings import Settings
from review_app.store import Store, now_iso
from tests.acting import acting, lock_on_win_rate, looking, person, token_for
from tests.conftest import write

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"

OUTPUTS = (
    "item_id,prompt,system,output,category\n"
    "q1,Capital of France?,base,Paris,geo\n"
    "q1,Capital of France?,finetuned,Paris is the capital of France and its largest city.,geo\n"
    "q2,2+2?,base,4,math\n"
    "q2,2+2?,finetuned,5,math\n"
    "q3,Largest ocean?,base,The Pacific Ocean is the largest and deepest ocean on Earth.,geo\n"
    "q3,Largest ocean?,finetuned,Pacific,geo\n"
)
# item, winner per reviewer (ann, bob), shown_left per reviewer
VOTES = [
    ("q1", ("finetuned", "finetuned"), ("base", "finetuned")),
    ("q2", ("base", "tie"), ("base", "base")),
    ("q3", ("both_bad", "base"), ("finetuned", None)),
]
# judge, item, first shown (None = order-combined), winner ("" = unparsed)
VERDICTS = [
    ("gpt", "q1", "base", "finetuned"),
    ("gpt", "q1", "finetuned", "finetuned"),
    ("gpt", "q2", "base", "base"),
    ("gpt", "q2", "finetuned", "finetuned"),
    ("gpt", "q3", "base", ""),
    ("gpt", "q3", "finetuned", "base"),
    ("labels", "q1", None, "finetuned"),
    ("labels", "q2", None, "base"),
]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_eval_set(store, tmp_path, studies=("s",)):
    data.import_outputs(store, write(tmp_path / "outputs.csv", OUTPUTS), "e", actor=person(store))
    for name in studies:
        studies_service.create_study(
            store, name, "e", [("finetuned", "base")], reviews_per_pair=2, actor=person(store)
        )


def votes_csv(tmp_path) -> Path:
    lines = ["item_id,system_a,system_b,reviewer,winner,shown_left,rationale"]
    for item, winners, lefts in VOTES:
        for reviewer, winner, left in zip(("ann", "bob"), winners, lefts, strict=True):
            lines.append(
                f"{item},finetuned,base,{reviewer},{winner},{left or ''},{reviewer} on {item}"
            )
    return write(tmp_path / "votes.csv", "\n".join(lines) + "\n")


def verdicts_csv(tmp_path) -> Path:
    lines = ["item_id,system_a,system_b,judge,winner,first,explanation"]
    for judge, item, first, winner in VERDICTS:
        lines.append(f"{item},finetuned,base,{judge},{winner},{first or ''},{judge} says {winner}")
    return write(tmp_path / "verdicts.csv", "\n".join(lines) + "\n")


def add_native(store, study: str) -> None:
    """The same votes and verdicts as the files, written the way the app itself records them."""
    with store.transaction():
        _add_native(store, store.studies.require_study(study))


def _add_native(store, study_row: dict) -> None:
    pairs = store.frames.pairs_frame(study_row["id"]).set_index("item_key")["pair_id"]
    reviewers = store.people.ensure_reviewers(["ann", "bob"])
    votes = []
    for item, winners, lefts in VOTES:
        for reviewer, winner, left in zip(("ann", "bob"), winners, lefts, strict=True):
            votes.append(
                {
                    "pair_id": int(pairs[item]),
                    "reviewer_id": reviewers[reviewer],
                    "shown_left": left,
                    "shown_right": {"base": "finetuned", "finetuned": "base"}.get(left),
                    "choice": "A" if winner == left else winner,
                    "winner": winner,
                    "rationale": f"{reviewer} on {item}",
                    "criteria": "{}",
                    "flags": "[]",
                    "source": "app",
                    "created_at": now_iso(),
                }
            )
    store.review.insert_votes(votes)
    for judge in ("gpt", "labels"):
        run_id = (
            store.db.utils["judge_runs"]
            .insert(
                {
                    "study_id": study_row["id"],
                    "label": judge,
                    "judge": f"openai/{judge}",
                    "source": "run",
                    "status": "done",
                    "params_hash": judge,
                    "created_at": now_iso(),
                }
            )
            .last_pk
        )
        store.judging.insert_verdicts(
            [
                {
                    "run_id": run_id,
                    "pair_id": int(pairs[item]),
                    "first_system": first or "",
                    "winner": winner or None,
                    "explanation": f"{judge} says {winner}",
                    "raw_text": f"{judge} says {winner}",
                    "parse_error": None if winner else "no verdict found",
                    "cost": 0.01,
                    "created_at": now_iso(),
                }
                for j, item, first, winner in VERDICTS
                if j == judge
            ]
        )


# ---- services ----


def test_imported_votes_and_verdicts_get_exactly_the_statistics_of_native_ones(store, tmp_path):
    make_eval_set(store, tmp_path, studies=("s",))
    data.import_votes(store, votes_csv(tmp_path), "s", actor=person(store))
    data.import_verdicts(store, verdicts_csv(tmp_path), "s", actor=person(store))
    # The same study in a second workspace, its data recorded the way the app records it (same
    # pair ids, so even the random baseline's coin flips match).
    native_store = Store.open(tmp_path / "native.db")
    make_eval_set(native_store, tmp_path, studies=("s",))
    add_native(native_store, "s")
    imported = calibration.calibration_report(looking(store, "s")).document()
    native = calibration.calibration_report(looking(native_store, "s")).document()
    native_store.close()
    assert imported == native

    gpt = next(j for j in imported["judges"] if j["judge"] == "gpt")
    # gpt combined: q1 finetuned (both orders), q2 tie (orders disagree), q3 base (one order
    # parsed). Votes: q1 ft ft, q2 base tie, q3 both_bad base -> with ties 2 + 1 + 1 of 6.
    assert gpt["agreement"]["with_ties"]["value"] == pytest.approx(4 / 6)
    assert gpt["agreement"]["without_ties"] == {
        "value": 1.0,
        "n": 3,
        "n_items": 2,  # q1 and q3: the comparisons the judge decided
        "ci": gpt["agreement"]["without_ties"]["ci"],
    }
    assert gpt["n_unparsed"] == 1
    assert {k: gpt["consistency"][k] for k in ("value", "n")} == {"value": 0.5, "n": 2}
    # Strict: each decisive vote against the combined verdict, a tie never agreeing: q1 2 of 2,
    # q2 0 of 1 (the judge's orders disagree), q3 1 of 1. Decisive share: q1 and q3 of 3.
    assert gpt["agreement_strict"]["value"] == pytest.approx(3 / 4)
    assert gpt["agreement_strict"]["n"] == 4
    assert gpt["decisive_share"]["value"] == pytest.approx(2 / 3)
    # The humans' strict ceiling: ordered (decisive vote, other vote) pairs: q1 2 of 2 agree,
    # q2 and q3 0 of 1 each.
    assert imported["humans"]["agreement_strict"]["value"] == pytest.approx(2 / 4)
    assert gpt["vs_ceiling"]["diff"] == pytest.approx(3 / 4 - 2 / 4)
    # Three comparisons prove nothing either way.
    assert gpt["vs_ceiling"]["verdict"] == "inconclusive"
    labels = next(j for j in imported["judges"] if j["judge"] == "labels")
    assert labels["p_first"] is None and labels["consistency"] is None
    # Decisive votes with a known left side: q1 ann, q1 bob, q2 ann (q3 bob's has none).
    assert imported["humans"]["p_left"]["value"] == pytest.approx(2 / 3)
    assert imported["humans"]["p_left"]["n"] == 3


def test_report_lists_computed_baselines_and_labels_runs_uniquely(store, tmp_path):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    study_id = store.studies.require_study("s")["id"]
    # A second run with an existing label and a stored run of the longest baseline.
    pair_ids = store.frames.pairs_frame(study_id)["pair_id"].tolist()
    for label, judge in (("gpt", "openai/gpt-other"), ("longest v1", "baseline/longest")):
        run_id = (
            store.db.utils["judge_runs"]
            .insert(
                {
                    "study_id": study_id,
                    "label": label,
                    "judge": judge,
                    "params_hash": judge,
                    "created_at": now_iso(),
                }
            )
            .last_pk
        )
        store.judging.insert_verdicts(
            [
                {"run_id": run_id, "pair_id": p, "first_system": "", "winner": "base"}
                | {"created_at": now_iso()}
                for p in pair_ids
            ]
        )
    report = calibration.calibration_report(looking(store, "s"))
    labels = [j.judge for j in report.calibration.overall.judges]
    assert "gpt" not in labels
    assert sum(label.startswith("gpt #") for label in labels) == 2
    assert "longest v1" in labels and "baseline/longest" not in labels
    assert report.reference == "longest v1"
    assert {"baseline/shortest", "baseline/first", "baseline/random"} <= set(labels)
    assert report.judges["baseline/shortest"].source == study_data.COMPUTED_BASELINE
    assert report.judges["longest v1"].judge == "baseline/longest"


def test_report_uses_the_configured_bootstrap_and_seed(store, tmp_path):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    settings = Settings.from_env({"REVIEW_APP_BOOTSTRAP": "50", "REVIEW_APP_SEED": "3"})
    first = calibration.calibration_report(looking(store, "s", settings)).document()
    again = calibration.calibration_report(looking(store, "s", settings)).document()
    assert first == again
    pairs = store.frames.pairs_frame(store.studies.require_study("s")["id"])
    verdicts = pd.concat(
        [
            store.frames.verdicts_frame(store.studies.require_study("s")["id"]),
            baselines.computed_verdicts(pairs, seed=3),
        ],
        ignore_index=True,
    )
    direct = stats.study_report(
        pairs,
        store.frames.votes_frame(store.studies.require_study("s")["id"]),
        verdicts,
        seed=3,
        n_boot=50,
        judge_order=baselines.order_judges(verdicts["judge"]),
    )
    # Before the lock every p_longer is withheld; after it the report is the statistics'.
    assert first == blank_length_preference(direct)
    lock(store, "s")
    assert calibration.calibration_report(looking(store, "s", settings)).document() == direct


def blank_length_preference(document: dict) -> dict:
    blanked = json.loads(json.dumps(document))
    for section in [blanked, *blanked["by_category"].values()]:
        for who in [section["humans"], *section["judges"]]:
            kept = {k: who["p_longer"][k] for k in ("n", "n_items")}
            who["p_longer"] = {"value": None, **kept, "ci": None}
            if who.get("judge") in stats.LENGTH_BASELINES:
                kept = {k: who["verbosity_gap"][k] for k in ("n", "n_items")}
                who["verbosity_gap"] = {"value": None, **kept, "ci": None}
    return blanked


def test_before_the_lock_p_longer_is_withheld_but_the_verbosity_gap_is_not(demo_store, capsys):
    """The demo's fine-tuned replies are the short ones: the humans' p_longer would be, nearly,
    one minus its win rate."""
    before = stats_json(demo_store, capsys)
    assert before["humans"]["p_longer"]["n"] > 0
    for section in [before, *before["by_category"].values()]:
        assert section["humans"]["p_longer"]["value"] is None
        assert all(j["p_longer"]["value"] is None for j in section["judges"])
    assert any(j["verbosity_gap"]["value"] is not None for j in before["judges"])
    code, out, err = run_cli(capsys, "--db", demo_store.path, "stats", "--study", "demo")
    assert code == 0, err
    assert "p_longer is withheld until the thresholds are locked" in out
    page = open_page(demo_store, "calibration.py")
    assert any("p_longer is withheld" in c.value for c in page.caption)
    judges = page.dataframe[0].value
    # Withheld in every row: the columns are left out, the caption says why.
    assert "p_longer" not in judges.columns and "humans p_longer" not in judges.columns

    lock(demo_store, "demo")
    after = stats_json(demo_store, capsys)
    assert after["humans"]["p_longer"]["value"] is not None
    assert after["judges"][0]["verbosity_gap"] == before["judges"][0]["verbosity_gap"]
    code, out, err = run_cli(capsys, "--db", demo_store.path, "stats", "--study", "demo")
    assert "withheld" not in out


def stats_json(store, capsys) -> dict:
    # After the lock the demo is interim: its outcomes are read in the admin's name.
    as_admin = ("--token", token_for(store, "stats-admin"))
    code, out, err = run_cli(
        capsys, "--db", store.path, *as_admin, "stats", "--study", "demo", "--json"
    )
    assert code == 0, err
    return json.loads(out)


def lock(store, study: str) -> None:
    thresholds.add_threshold(
        acting(store, study, "admin"), "final_review_acceptable_rate", {}, ">=", 0.9
    )
    thresholds.lock_thresholds(acting(store, study, "admin"), "a small test study")


def test_disagreements_list_judge_against_majority_and_orders(store, tmp_path):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    lock(store, "s")
    frame = disagreements.disagreements(
        store, "s", disagreements.DisagreementFilters(judges=("gpt", "labels"))
    )
    rows = {(r.judge, r.item_key): r for r in frame.itertuples()}
    # gpt on q2: orders disagree (tie) while the majority is tie -> orders only.
    assert rows[("gpt", "q2")].reason == "its two orders disagree"
    assert rows[("gpt", "q2")].verdict_x_first == "base"
    assert rows[("gpt", "q2")].verdict_y_first == "finetuned"
    assert rows[("gpt", "q2")].explanation_x_first == "gpt says base"
    assert rows[("gpt", "q2")].explanation_y_first == "gpt says finetuned"
    assert rows[("gpt", "q2")].explanation_combined is None
    # labels on q2 says base; the majority is tie (base vs tie, 1-1).
    assert rows[("labels", "q2")].reason == "disagrees with the human majority"
    assert rows[("labels", "q2")].human_majority == "tie"
    assert rows[("labels", "q2")].explanation_combined == "labels says base"
    # q1: everyone agrees with the humans; q3 gpt says base, majority tie (both_bad vs base).
    assert ("gpt", "q1") not in rows and ("labels", "q1") not in rows
    assert rows[("gpt", "q3")].reason == "disagrees with the human majority"
    assert "ann: both_bad (left: finetuned) - ann on q3" in rows[("gpt", "q3")].votes
    assert "bob: base - bob on q3" in rows[("gpt", "q3")].votes
    assert (
        rows[("gpt", "q3")].output_x
        == "The Pacific Ocean is the largest and deepest ocean on Earth."
    )
    assert rows[("gpt", "q3")].n_votes == 2
    # Largest length difference first.
    assert list(frame["length_difference"]) == sorted(frame["length_difference"], reverse=True)


def test_before_the_lock_disagreements_name_no_system(store, tmp_path):
    """Agreement needs no winner's name: before the lock each pair's systems are A and B in a
    random orientation, in the table and in its CSV, and the same disagreements are listed."""
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    blind = disagreements.disagreements(store, "s")
    text = disagreements.disagreements_csv(blind) + blind.to_string()
    assert "finetuned" not in text and "base" not in text.replace("baseline", "")
    assert set(blind["system_x"]) == {"A"} and set(blind["system_y"]) == {"B"}
    assert set(blind["human_majority"].dropna()) <= {"A", "B", "tie"}
    lock(store, "s")
    named = disagreements.disagreements(store, "s")
    key = store.calibration.blinding_key()
    label_key = store.calibration.label_key()
    labels = {disagreements.row_label(label_key, int(p)): p for p in named["pair_id"]}
    assert sorted(
        zip(blind["judge"], blind["item_key"].map(labels), blind["reason"], strict=True)
    ) == sorted(zip(named["judge"], named["pair_id"], named["reason"], strict=True))
    # The orientation is per pair, keyed by the workspace's random key: the A side is the first
    # system by name on some pairs and the second on others.
    row = named.set_index(["judge", "pair_id"])
    for r in blind.itertuples():
        shown = row.loc[(r.judge, labels[r.item_key])]
        if shown.judge_verdict in (shown.system_x, shown.system_y):
            first = shown.judge_verdict == shown.system_x
            swapped = disagreements.flipped(key, int(labels[r.item_key]))
            assert r.judge_verdict == ("A" if first != swapped else "B")
    assert {disagreements.flipped(key, pair_id) for pair_id in range(40)} == {True, False}


def test_disagreement_filters(store, tmp_path):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    lock(store, "s")

    def keys(**filters):
        frame = disagreements.disagreements(
            store, "s", disagreements.DisagreementFilters(**filters)
        )
        return {(r.judge, r.item_key) for r in frame.itertuples()}

    real = {"judges": ("gpt", "labels")}
    assert keys(**real, kinds=("orders",)) == {("gpt", "q2")}
    assert keys(**real, kinds=("majority",)) == {("labels", "q2"), ("gpt", "q3")}
    assert keys(**real, categories=("math",)) == {("gpt", "q2"), ("labels", "q2")}
    # q2 outputs are 1 character each; q3 differs by 53.
    assert keys(**real, min_length_difference=10) == {("gpt", "q3")}
    assert keys(**real, max_length_difference=10) == {("gpt", "q2"), ("labels", "q2")}
    # Baselines are judges too: "first" contradicts itself on every pair.
    assert {("baseline/first", q) for q in ("q1", "q2", "q3")} <= keys(kinds=("orders",))


def test_disagreements_export_to_csv_with_every_column(store, tmp_path):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    lock(store, "s")
    frame = disagreements.disagreements(
        store, "s", disagreements.DisagreementFilters(judges=("gpt",))
    )
    parsed = pd.read_csv(io.StringIO(disagreements.disagreements_csv(frame)), keep_default_na=False)
    assert list(parsed.columns) == disagreements.DISAGREEMENT_COLUMNS
    assert len(parsed) == len(frame) == 2
    assert set(parsed["explanation_y_first"]) >= {"gpt says finetuned"}


def test_disagreements_csv_neutralises_formulas(store, tmp_path):
    import csv

    frame = pd.DataFrame(
        {
            "judge": ["=cmd|' /C calc'!A0", "gpt"],
            "explanation_x_first": ['=HYPERLINK("http://attacker.example/","x")', "@SUM(A1)"],
            "votes": ["ann: base - fine\nbob: tie", None],
            "length_difference": [3, 0],
        }
    )
    rows = list(csv.reader(io.StringIO(disagreements.disagreements_csv(frame), newline="")))
    assert rows[1] == [
        "'=cmd|' /C calc'!A0",
        '\'=HYPERLINK("http://attacker.example/","x")',
        "ann: base - fine\nbob: tie",
        "3",
    ]
    assert rows[2] == ["gpt", "'@SUM(A1)", "", "0"]


def test_unknown_study_is_not_found(store):
    with pytest.raises(NotFound, match="no study named 'nope'"):
        calibration.calibration_report(looking(store, "nope"))


# ---- CLI ----

ESTIMATE = {"value": (float, type(None)), "n": int, "n_items": int}
ESTIMATE_CI = {**ESTIMATE, "ci": (list, type(None))}
WITH_WITHOUT = {"with_ties": ESTIMATE_CI, "without_ties": ESTIMATE_CI}
HUMANS = {
    "agreement": WITH_WITHOUT,
    "agreement_strict": ESTIMATE_CI,
    "kappa": WITH_WITHOUT,
    "fleiss_kappa": ESTIMATE,
    "krippendorff_alpha": ESTIMATE,
    "reviewer_kappa": [{"a": str, "b": str, "kappa": (float, type(None)), "n": int}],
    "p_left": ESTIMATE_CI,
    "p_longer": ESTIMATE_CI,
}
JUDGE = {
    "judge": str,
    "n_verdicts": int,
    "n_unparsed": int,
    "agreement": WITH_WITHOUT,
    "kappa": WITH_WITHOUT,
    "vs_majority": {
        key: (float, type(None))
        for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1")
    }
    | {"accuracy_ci": (list, type(None)), "macro_f1_ci": (list, type(None)), "n": int},
    "agreement_strict": ESTIMATE_CI,
    "decisive_share": ESTIMATE_CI,
    "vs_ceiling": {
        "diff": (float, type(None)),
        "ci": (list, type(None)),
        "n": int,
        "n_items": int,
        "margin": float,
        "verdict": str,
    },
    "consistency": (ESTIMATE_CI, None),
    "p_first": (ESTIMATE_CI, None),
    "p_longer": ESTIMATE_CI,
    "verbosity_gap": ESTIMATE_CI,
}
SECTION = {"n_comparisons": int, "n_votes": int, "humans": HUMANS, "judges": [JUDGE]}


def check_schema(value, schema, where="$"):
    """Assert `value` has exactly the keys and types of `schema` (docs/statistics.md)."""
    if isinstance(schema, tuple) and any(isinstance(s, dict) or s is None for s in schema):
        if value is None:
            assert None in schema, f"{where} is null"
            return
        return check_schema(value, next(s for s in schema if isinstance(s, dict)), where)
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where} is not an object"
        assert set(value) == set(schema), f"{where} keys {sorted(value)} != {sorted(schema)}"
        for key, sub in schema.items():
            check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where} is not a list"
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]")
    else:
        assert isinstance(value, schema) and not isinstance(value, bool), (
            f"{where} = {value!r} is not {schema}"
        )
        if isinstance(value, list):  # a CI
            assert len(value) == 2 and all(isinstance(v, float) for v in value), where
            assert value[0] <= value[1], where


def test_stats_json_follows_the_documented_schema(demo_store, tmp_path, capsys):
    # The demo's judge was imported: its agreement before the lock is a look in an admin's name.
    as_admin = ("--token", token_for(demo_store, "stats-admin"))
    code, out, err = run_cli(
        capsys, "--db", demo_store.path, *as_admin, "stats", "--study", "demo", "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert document.pop("split") == "all" and document.pop("self_preference") == []
    # The demo's judges are pairwise: no pointwise score, systems pooled before the lock.
    assert document.pop("pointwise_scores") == {"by_system": False, "rows": []}
    check_schema(document, {**SECTION, "by_category": dict})
    assert set(document["by_category"]) == {"formatting", "reasoning", "safety", "support"}
    for name, section in document["by_category"].items():
        check_schema(section, SECTION, f"$.by_category.{name}")
    assert [j["judge"] for j in document["judges"]] == ["example-llm-judge"] + [
        f"baseline/{name}" for name in baselines.BASELINES
    ]
    assert document["n_comparisons"] == 128
    assert (
        document["n_votes"]
        == demo_store.studies.study_counts(demo_store.studies.require_study("demo")["id"])["votes"]
    )
    assert sum(s["n_comparisons"] for s in document["by_category"].values()) == 128
    ceiling = document["humans"]["agreement"]["without_ties"]
    assert 0 <= ceiling["ci"][0] <= ceiling["value"] <= ceiling["ci"][1] <= 1
    assert {(r["a"], r["b"]) for r in document["humans"]["reviewer_kappa"]} == {
        ("example-ana", "example-ben"),
        ("example-ana", "example-chen"),
        ("example-ben", "example-chen"),
    }


def test_stats_prints_readable_tables(demo_store, capsys):
    as_admin = ("--token", token_for(demo_store, "stats-admin"))
    code, out, _ = run_cli(capsys, "--db", demo_store.path, *as_admin, "stats", "--study", "demo")
    assert code == 0
    assert out.startswith("study demo: 128 comparisons")
    assert "humans (the ceiling a judge is measured against)" in out
    header = next(line for line in out.splitlines() if line.startswith("judge "))
    assert "agreement w/o ties" in header and "p_first" in header
    for name in baselines.BASELINES:
        assert f"\nbaseline/{name} " in out
    assert "agreement without ties by category" in out
    assert "\nsupport " in out


def test_stats_of_an_unknown_study_is_one_line_error(store, capsys):
    code, out, err = run_cli(capsys, "stats", "--study", "nope", "--json")
    assert code == 1 and out == ""
    assert err.strip() == "error: no study named 'nope' (known: none)"


# ---- pages ----


def open_page(store, page: str, user: str = "demo-admin") -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def import_agreeing_judge(store, tmp_path) -> None:
    """A judge that says what the demo reviewers' majority says, in both orders."""
    study_id = store.studies.require_study("demo")["id"]
    pairs = store.frames.pairs_frame(study_id).set_index("pair_id")
    by_pair: dict[tuple, Counter] = {}
    for v in store.frames.votes_frame(study_id).itertuples():
        pair = pairs.loc[v.pair_id]
        by_pair.setdefault((pair.item_key, pair.system_x, pair.system_y), Counter())[
            v.winner if v.winner != "both_bad" else "tie"
        ] += 1
    lines = ["item_id,system_a,system_b,judge,winner,first,explanation"]
    for (item, a, b), counts in by_pair.items():
        (winner, top), *rest = counts.most_common()
        if rest and rest[0][1] == top:
            winner = "tie"  # no unique most frequent outcome: the majority label is a tie
        for first in (a, b):
            lines.append(f"{item},{a},{b},majority-judge,{winner},{first},agrees")
    data.import_verdicts(
        store, write(tmp_path / "judge.csv", "\n".join(lines) + "\n"), "demo", actor=person(store)
    )


def test_calibration_page_shows_each_judge_beside_the_human_ceiling(demo_store, tmp_path):
    import_agreeing_judge(demo_store, tmp_path)
    lock(demo_store, "demo")
    report = calibration.calibration_report(looking(demo_store, "demo"))
    at = open_page(demo_store, "calibration.py")
    assert not at.exception
    assert at.title[0].value == "Calibration"
    metrics = {m.label: m.value for m in at.metric}
    ceiling = report.calibration.overall.humans.agreement_without_ties
    assert metrics["Agreement w/o ties"] == f"{ceiling.value:.2f}"
    judges = at.dataframe[0].value
    assert list(judges["judge"]) == ["example-llm-judge", "majority-judge"] + [
        f"baseline/{n}" for n in baselines.BASELINES
    ]
    assert set(judges["human ceiling w/o ties"]) == {ceiling.value}
    row = judges.set_index("judge").loc["majority-judge"]
    assert (
        row["agreement w/o ties"]
        > judges.set_index("judge").loc["baseline/longest"]["agreement w/o ties"]
    )
    assert row["consistency"] == 1.0
    assert row["verdict"].startswith("within the human ceiling")
    assert any(
        "majority-judge" in s.value and "within the human ceiling" in s.value for s in at.success
    )
    texts = " ".join(m.value for m in at.markdown)
    assert "**baseline/shortest**: " in texts and "not ahead of baseline/longest" in texts
    # Agreement against the ceiling, bias, reviewer kappa, categories.
    assert len(at.get("vega_lite_chart")) == 4
    subheaders = [s.value for s in at.subheader]
    assert "Reviewer x reviewer agreement" in subheaders
    kappas = at.dataframe[1].value
    assert set(kappas["reviewer"]) == {"example-ana", "example-ben", "example-chen"}
    confusion = at.dataframe[2].value
    assert (
        int(confusion.to_numpy().sum())
        == next(
            j for j in report.calibration.overall.judges if j.judge == "baseline/longest"
        ).vs_majority.n
    )
    categories = at.dataframe[3].value
    assert set(categories["category"]) == {"formatting", "reasoning", "safety", "support"}


def test_before_the_lock_the_calibration_page_hides_the_named_confusion_table(demo_store):
    at = open_page(demo_store, "calibration.py")
    assert not at.exception
    assert any("shows once the thresholds are locked" in i.value for i in at.info)
    shown = " ".join(str(d.value.to_dict()) for d in at.dataframe)
    assert "humans: x (first by name)" not in shown


def test_calibration_page_shows_new_verdicts_at_once(demo_store, tmp_path):
    at = open_page(demo_store, "calibration.py")
    assert "majority-judge" not in list(at.dataframe[0].value["judge"])
    before = calibration.calibration_data_version(demo_store, "demo")
    import_agreeing_judge(demo_store, tmp_path)
    assert calibration.calibration_data_version(demo_store, "demo") != before
    at.run()
    assert not at.exception
    assert "majority-judge" in list(at.dataframe[0].value["judge"])


def test_calibration_page_switches_the_confusion_matrix_by_judge(demo_store, tmp_path):
    import_agreeing_judge(demo_store, tmp_path)
    lock(demo_store, "demo")
    at = open_page(demo_store, "calibration.py")
    at.selectbox(key="calibration_confusion_judge").select("majority-judge").run()
    assert not at.exception
    confusion = at.dataframe[2].value.to_numpy()
    # It says what the majority says: everything on the diagonal.
    assert confusion.trace() == confusion.sum() > 0


def test_calibration_page_warns_when_n_is_small(store, tmp_path, settings):
    make_eval_set(store, tmp_path)
    add_native(store, "s")
    store.demo_links = {
        "admin": people.add_reviewer(store, settings, "boss", "admin", actor=person(store))[1]
    }
    at = open_page(store, "calibration.py", "admin")
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("human-human agreement without ties") for w in warnings)
    assert any(w.startswith("gpt agreement without ties") and "more" in w for w in warnings)


def test_disagreement_browser_filters_shows_details_and_exports(demo_store, tmp_path):
    import_agreeing_judge(demo_store, tmp_path)
    # Texts are shown once the thresholds are locked (before, rows are sealed).
    lock_on_win_rate(demo_store)
    at = open_page(demo_store, "disagreements.py")
    assert not at.exception
    # Only the real judges are selected at first; the one that agrees everywhere has none.
    judges = at.multiselect(key="disagreements_judges")
    assert judges.value == ["example-llm-judge", "majority-judge"]
    judges.unselect("example-llm-judge").run()
    assert at.markdown[0].value == "**0 disagreements**"

    at.multiselect(key="disagreements_judges").select("baseline/longest").run()
    expected = disagreements.disagreements(
        demo_store,
        "demo",
        disagreements.DisagreementFilters(judges=("majority-judge", "baseline/longest")),
    )
    assert at.markdown[0].value == f"**{len(expected)} disagreements**"
    table = at.dataframe[0].value
    assert set(table["judge"]) == {"baseline/longest"}
    top = expected.iloc[0]
    # The first row is shown in detail: both outputs, the votes with rationales.
    assert at.subheader[0].value == f"{top['item_key']} · {top['category']} · baseline/longest"
    # Outputs appear as reviewers saw them (the same faithful rendering), raw text on request.
    bodies = [e.proto.body for e in at.get("html")]
    shown = [render_output(top[f"output_{side}"]) for side in ("x", "y")]
    assert all(any(html in body for body in bodies) for html in shown)
    assert top["votes"] and top["votes"] in [t.value for t in at.text]
    at.toggle(key="disagreements_raw").set_value(True).run()
    assert [c.value for c in at.code][:3] == [top["prompt"], top["output_x"], top["output_y"]]

    at.multiselect(key="disagreements_categories").set_value(["safety"]).run()
    assert set(at.dataframe[0].value["category"]) <= {"safety"}
    at.slider(key="disagreements_length").set_value((0, 10)).run()
    assert (at.dataframe[0].value["length_difference"] <= 10).all()
    assert not at.exception


def test_disagreement_browser_is_for_admins_only(demo_store):
    for user in ("demo-signer", "demo-reviewer"):
        at = open_page(demo_store, "disagreements.py", user)
        assert not at.exception
        assert "for admin accounts" in at.error[0].value
        assert not at.dataframe


def test_reviewers_cannot_open_calibration(demo_store):
    at = open_page(demo_store, "calibration.py", "demo-reviewer")
    assert "for admin or signer accounts" in at.error[0].value
    assert not at.metric
