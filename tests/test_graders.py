"""Graders: the file format and its errors, every check type on a small hand-graded corpus
(invalid JSON, schema violations, unicode, empty outputs), accuracy and macro-F1, idempotent
re-grading, the lock pinning grader versions, the report, and the grader gate metrics judged by
their error rates."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest

from review_app import gate, graders, report, stats
from review_app.errors import InputError, OutcomesHidden
from review_app.services import data, grading, signoff, studies, thresholds
from review_app.services import decision as decisions
from review_app.services.demo import DEMO_STUDY
from tests.acting import acting, looking, person
from tests.conftest import write
from tests.test_decisions import NO_CALIBRATION

# (item, category, reference, base output, tuned output)
CORPUS = [
    ("j1", "json", "", 'Sure: {"a": 1}', '{"a": 1}'),
    ("j2", "json", "", '```json\n{"a": 2}\n```', '{"a": "two"}'),
    ("j3", "json", "", "NaN", '{"a": 3, "ü": "日本"}'),
    ("j4", "json", "", '{"a": 4}', "[1, 2]"),
    ("c1", "chat", "yes", "Yes.", "  YES "),
    ("c2", "chat", "no", "", "no"),
    ("c3", "chat", "maybe", "maybe", "Ünïcode — no"),
    ("c4", "chat", "no", "no", "yes"),
]

GRADER = """\
# a comment that does not change the hash
name: corpus
checks:
  - name: valid
    type: json_valid
    categories: [json]
  - name: schema
    type: json_schema
    categories: [json]
    schema:
      type: object
      required: [a]
      properties:
        a: {type: integer}
  - name: starts-with-brace
    type: regex
    pattern: "^\\\\{"
    categories: [json]
  - name: short-j3
    type: max_chars
    n: 20
    items: [j3]
  - name: short-chat
    type: max_chars
    n: 5
    categories: [chat]
  - name: has-kanji
    type: contains
    text: 日本
  - name: no-fence
    type: not_contains
    text: "```"
  - name: exact
    type: exact_match
    categories: [chat]
  - name: exact-normalised
    type: exact_match
    normalize: true
  - name: label
    type: choice
    labels: ["yes", "no", maybe]
"""

# check -> (base passed, tuned passed, n per system), counted by hand from CORPUS.
EXPECTED = {
    "valid": (1, 4, 4),  # base: prose, a code fence and NaN are not JSON
    "schema": (1, 2, 4),  # tuned: "two" is no integer, [1, 2] no object
    "starts-with-brace": (1, 3, 4),
    "short-j3": (1, 1, 1),  # 19 characters (25 bytes in UTF-8)
    "short-chat": (4, 2, 4),  # the empty output is short
    "has-kanji": (0, 1, 8),
    "no-fence": (7, 8, 8),
    "exact": (2, 1, 4),
    # Items j1-j4 have no reference: only the chat items count.
    "exact-normalised": (2, 2, 4),
    "label": (2, 2, 4),
}


def write_corpus(path):
    lines = []
    for item, category, reference, base, tuned in CORPUS:
        for system, output in (("base", base), ("tuned", tuned)):
            row = {"item_id": item, "prompt": f"prompt {item}", "system": system, "output": output}
            lines.append(json.dumps(row | {"category": category, "reference": reference}))
    return write(path, "\n".join(lines) + "\n")


@pytest.fixture
def corpus(store, tmp_path):
    data.import_outputs(
        store, write_corpus(tmp_path / "outputs.jsonl"), "corpus", actor=person(store)
    )
    studies.create_study(
        store, "s", "corpus", [("tuned", "base")], candidate="tuned", actor=person(store)
    )
    return write(tmp_path / "corpus.yaml", GRADER)


def lock(store, study="s", metric="grader_pass_rate", params=None, value=0.5):
    params = params or {"check": "valid"}
    thresholds.add_threshold(acting(store, study, "admin"), metric, params, None, value)
    thresholds.lock_thresholds(acting(store, study, "admin"), "a small test study")


def test_hand_computed_pass_rates(store, corpus):
    outcome = grading.grade(acting(store, "s", "admin"), corpus)
    assert outcome.outputs == 16 and outcome.new == outcome.results == 2 * sum(
        n for *_, n in EXPECTED.values()
    )
    lock(store)
    summary = grading.grader_summary(looking(store, "s"))
    overall = {(r["check"], r["system"]): r for r in summary["graders"] if r["category"] is None}
    for check, (base, tuned, n) in EXPECTED.items():
        for system, passed in (("base", base), ("tuned", tuned)):
            row = overall[(check, system)]
            assert (row["passed"], row["n"]) == (passed, n), (check, system)
            assert row["rate"] == pytest.approx(passed / n)
            assert row["ci"] == pytest.approx(list(stats.wilson_interval(passed / n, n)))
    # Per category: the no-fence check covers both categories, the base fence is in json.
    by_category = {
        (r["check"], r["system"], r["category"]): r["passed"]
        for r in summary["graders"]
        if r["category"]
    }
    assert by_category[("no-fence", "base", "json")] == 3
    assert by_category[("no-fence", "base", "chat")] == 4


def test_choice_accuracy_and_macro_f1_by_hand_and_by_sklearn(store, corpus):
    grading.grade(acting(store, "s", "admin"), corpus)
    lock(store)
    scores = {r["system"]: r for r in grading.grader_summary(looking(store, "s"))["choice"]}
    # tuned: yes (P 1/2, R 1) F1 2/3; no (P 1, R 1/2) F1 2/3; maybe F1 0 -> 4/9.
    # base: yes F1 0; no (P 1, R 1/2) F1 2/3; maybe F1 1 -> 5/9.
    assert scores["tuned"]["macro_f1"] == pytest.approx(4 / 9)
    assert scores["base"]["macro_f1"] == pytest.approx(5 / 9)
    assert scores["tuned"]["accuracy"] == scores["base"]["accuracy"] == 0.5
    # Imported here: scikit-learn costs every test process collecting this module 0.1-0.4 s.
    from sklearn.metrics import f1_score

    truth = ["yes", "no", "maybe", "no"]
    predicted = {"base": ["yes.", "", "maybe", "no"], "tuned": ["yes", "no", "ünïcode — no", "yes"]}
    for system, labels in predicted.items():
        expected = f1_score(truth, labels, labels=["maybe", "no", "yes"], average="macro")
        assert scores[system]["macro_f1"] == pytest.approx(expected)
    assert scores["tuned"]["labels"] == ["maybe", "no", "yes"]


def test_pass_rates_stay_hidden_until_the_lock(store, corpus):
    grading.grade(acting(store, "s", "admin"), corpus)
    with pytest.raises(OutcomesHidden):
        grading.grader_summary(looking(store, "s"))


def test_the_content_hash_ignores_comments_and_layout_but_not_content():
    a = graders.parse_grader(GRADER)
    reordered = "checks:\n" + GRADER.split("checks:\n", 1)[1] + "name: corpus\n"
    b = graders.parse_grader(reordered.replace("categories: [json]", "categories:\n      - json"))
    assert a.content_hash == b.content_hash
    assert a.canonical == b.canonical
    c = graders.parse_grader(GRADER.replace("n: 20", "n: 21"))
    assert c.content_hash != a.content_hash


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            "name: g\nchecks:\n  - name: a\n    type: regex\n",
            3,
            "check 'a': field checks[0]: missing required key 'pattern'",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: regex\n    pattern: '(['\n",
            5,
            "check 'a': field checks[0].pattern: not a valid regular expression",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: fuzzy\n",
            4,
            "check 'a': field checks[0].type: unknown check type 'fuzzy'",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: max_chars\n    n: -1\n",
            5,
            "check 'a': field checks[0].n: expected a whole number",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: json_schema\n    schema: {type: 12}\n",
            5,
            "check 'a': field checks[0].schema: not a valid JSON Schema",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: json_valid\n    colour: red\n",
            5,
            "check 'a': field checks[0].colour: unknown key",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: json_valid\n  - name: a\n    type: json_valid\n",
            5,
            "check 'a': field checks[1].name: two checks share this name",
        ),
        (
            "name: g\nchecks:\n  - name: a\n    type: contains\n    text: ''\n",
            5,
            "check 'a': field checks[0].text: expected a non-empty string",
        ),
        ("name: g\nchecks: []\n", 2, "field checks: expected a non-empty list of checks"),
        ("name: G!\nchecks: []\n", 1, "field name: use lower-case letters"),
        ("name: g\nchecks: [\n", 3, "not valid YAML"),
        ("", None, "the grader file is empty"),
        (
            "name: g\nchecks:\n  - name: a\n    type: choice\n    labels: [yes, maybe]\n",
            5,
            "check 'a': field checks[0].labels[0]: YAML reads yes",
        ),
    ],
)
def test_a_bad_grader_file_is_one_line_naming_file_line_check_and_field(
    store, corpus, tmp_path, text, line, expected
):
    path = write(tmp_path / "bad.yaml", text)
    before = store.table_counts()
    with pytest.raises(InputError) as caught:
        grading.grade(acting(store, "s", "admin"), path)
    message = str(caught.value)
    assert "\n" not in message
    where = f"{path}:{line}" if line else str(path)
    assert message.startswith(where + ":"), message
    assert expected in message
    assert store.table_counts() == before


def test_a_grader_that_applies_to_nothing_is_refused(store, corpus, tmp_path):
    path = write(
        tmp_path / "none.yaml",
        "name: g\nchecks:\n  - name: a\n    type: json_valid\n    categories: [poetry]\n",
    )
    with pytest.raises(InputError, match="no check of grader g applies"):
        grading.grade(acting(store, "s", "admin"), path)


def test_grading_again_adds_nothing_and_a_new_version_gets_its_own_rows(store, corpus, tmp_path):
    first = grading.grade(acting(store, "s", "admin"), corpus)
    counts = store.table_counts()
    again = grading.grade(acting(store, "s", "admin"), corpus)
    assert again.new == 0 and again.results == first.results
    assert store.table_counts() == counts  # no result, grader or audit entry added
    edited = write(tmp_path / "v2.yaml", GRADER.replace("n: 5", "n: 6"))
    second = grading.grade(acting(store, "s", "admin"), edited)
    assert second.new == second.results and second.content_hash != first.content_hash
    versions = store.grading.study_graders(store.studies.require_study("s")["id"])
    assert [v["content_hash"] for v in versions] == [first.content_hash, second.content_hash]
    # The latest version is in force before the lock, and the lock pins it.
    lock(store)
    summary = grading.grader_summary(looking(store, "s"))
    assert summary["versions"] == [
        {"name": "corpus", "content_hash": second.content_hash, "pinned": True, "n_results": 90}
    ]
    short = [r for r in summary["graders"] if r["check"] == "short-chat" and not r["category"]]
    assert {r["system"]: r["passed"] for r in short} == {"base": 4, "tuned": 3}


def test_results_are_append_only(store, corpus):
    grading.grade(acting(store, "s", "admin"), corpus)
    for sql in ("UPDATE grader_results SET passed = 1", "DELETE FROM graders"):
        with pytest.raises(Exception, match="append-only"):
            store.db.execute(sql)


def test_the_lock_pins_the_grader_and_another_version_after_it_is_a_deviation(
    store, corpus, tmp_path, settings, cli_admin
):
    first = grading.grade(acting(store, "s", "admin"), corpus)
    lock(store)
    row = store.gate.threshold_lock(store.studies.require_study("s")["id"])
    assert json.loads(row["graders"]) == [{"name": "corpus", "content_hash": first.content_hash}]
    logged = store.audit.audit_entries(store.studies.require_study("s")["id"])[-1]
    assert json.loads(logged["detail"])["graders"][0]["content_hash"] == first.content_hash
    # The pinned version may run again (new outputs only); another version needs a reason.
    assert grading.grade(acting(store, "s", "admin"), corpus).new == 0
    edited = write(tmp_path / "v2.yaml", GRADER.replace("n: 5", "n: 6"))
    before = store.table_counts()
    with pytest.raises(
        InputError, match="grader corpus version [0-9a-f]+, which the lock did not pin"
    ):
        grading.grade(acting(store, "s", "admin"), edited)
    assert store.table_counts() == before
    outcome = grading.grade(acting(store, "s", "admin"), edited, reason="the limit was a typo")
    assert outcome.deviation
    (deviation,) = store.gate.deviations(store.studies.require_study("s")["id"])
    assert deviation["reason"] == "the limit was a typo"
    assert first.content_hash[:12] in deviation["before"]
    # The gate and the summary keep reading the pinned version; the report shows the deviation.
    summary = grading.grader_summary(looking(store, "s"))
    assert [v["content_hash"] for v in summary["versions"]] == [first.content_hash]
    built = signoff.build_report(looking(store, "s", settings))
    text = report.render_markdown(built | {"signoffs": []})
    assert "## Graders" in text and "typo" in text and "pinned by the lock" in text
    assert "<h2>Graders</h2>" in report.render_html(built | {"signoffs": []})
    assert built["graders"]["graders"][0]["ci"] is not None


def test_no_graders_section_without_results(store, corpus, settings):
    lock(store)
    built = signoff.build_report(looking(store, "s", settings))
    assert "graders" not in built
    assert "## Graders" not in report.render_markdown(built | {"signoffs": []})


def test_the_gate_decides_on_pinned_grader_results(store, corpus, settings):
    grading.grade(acting(store, "s", "admin"), corpus)
    thresholds.add_threshold(
        acting(store, "s", "admin"), "grader_pass_rate", {"check": "valid"}, ">=", 0.5
    )
    thresholds.add_threshold(
        acting(store, "s", "admin"),
        "grader_pass_rate_change",
        {"check": "no-fence", "system_b": "base"},
        "<=",
        5,
    )
    thresholds.lock_thresholds(acting(store, "s", "admin"), "a small test study")
    results = decisions.evaluate_gate(looking(store, "s", settings)).results
    rate, change = results
    assert rate.value == 1.0 and rate.n == 4  # the candidate's four JSON outputs
    assert rate.outcome == "interim" and "so far: 4 of 30 outputs needed" in rate.reason
    # no-fence: tuned 4/4 vs base 3/4 on json, 4/4 vs 4/4 on chat; the worst suite is chat.
    assert change.value == pytest.approx(0.0) and change.n == 4
    assert "worst: chat" in change.reason


def test_a_named_category_without_results_is_not_measurable():
    frame = pd.DataFrame(
        {
            "grader": "g",
            "check": "c",
            "system": ["a", "b"],
            "item_key": ["i", "i"],
            "category": ["x", "x"],
            "passed": [True, False],
        }
    )
    inputs = gate.GateInputs(NO_CALIBRATION, [], {}, graders=frame, candidate="a")
    t = gate.validate_threshold(
        "grader_pass_rate_change", {"check": "c", "system_b": "b", "categories": "x,y"}, "<=", 5
    )
    assert gate.measure(t, inputs).value is None
    assert "category y" in gate.measure(t, inputs).detail
    other = gate.validate_threshold("grader_pass_rate", {"check": "zz"}, ">=", 0.5)
    assert "no results of grader check zz" in gate.measure(other, inputs).detail


# ---- the grader gate metrics judged by their error rates ----


def _frame(rng, n: int, rates: dict[str, float], categories=("suite",)) -> pd.DataFrame:
    """n outputs of each system in each category, each passing with its system's rate."""
    passed = [rng.random(n) < rates[system] for category in categories for system in rates]
    return _layout(n, tuple(rates), tuple(categories)).assign(passed=np.concatenate(passed))


@functools.cache
def _layout(n: int, systems: tuple[str, ...], categories: tuple[str, ...]) -> pd.DataFrame:
    """The columns of `_frame` other than the outcomes: the same in every draw of a simulation,
    so built once (building text columns costs more than the gate's own measure)."""
    parts = [
        pd.DataFrame(
            {
                "grader": "g",
                "check": "c",
                "system": system,
                "item_key": [f"{category}-{i}" for i in range(n)],
                "category": category,
            }
        )
        for category in categories
        for system in systems
    ]
    return pd.concat(parts, ignore_index=True)


def _outcomes(frames, threshold) -> list[str]:
    return [
        gate.decide(
            threshold,
            gate.measure(
                threshold, gate.GateInputs(NO_CALIBRATION, [], {}, graders=f, candidate="tuned")
            ),
            stats.MIN_COMPARISONS,
        ).outcome
        for f in frames
    ]


@pytest.mark.parametrize("n", [40, 200])
def test_a_pass_rate_exactly_at_the_bar_passes_at_most_5_percent(n):
    rng = np.random.default_rng(n)
    bar = gate.validate_threshold("grader_pass_rate", {"check": "c"}, ">=", 0.9)
    at_bar = _outcomes([_frame(rng, n, {"tuned": 0.9}) for _ in range(1000)], bar)
    assert at_bar.count("pass") / len(at_bar) <= 0.06
    # ... and one clearly above it is usually shown to pass with 200 outputs.
    above = _outcomes([_frame(rng, n, {"tuned": 0.97}) for _ in range(300)], bar)
    if n == 200:
        assert above.count("pass") / len(above) >= 0.8


def test_a_pass_rate_drop_exactly_at_the_margin_passes_at_most_5_percent():
    """Two suites, the candidate 5 points below the base system in both: the non-inferiority
    check must not pass it more than one time in twenty; with no drop it usually passes."""
    rng = np.random.default_rng(7)
    margin = gate.validate_threshold(
        "grader_pass_rate_change", {"check": "c", "system_b": "base"}, "<=", 5
    )
    suites = ("a", "b")
    at_margin = _outcomes(
        [_frame(rng, 300, {"tuned": 0.85, "base": 0.9}, suites) for _ in range(600)], margin
    )
    assert at_margin.count("pass") / len(at_margin) <= 0.05
    no_drop = _outcomes(
        [_frame(rng, 300, {"tuned": 0.97, "base": 0.9}, suites) for _ in range(200)], margin
    )
    assert no_drop.count("pass") / len(no_drop) >= 0.8
    clear_drop = _outcomes(
        [_frame(rng, 300, {"tuned": 0.7, "base": 0.9}, suites) for _ in range(200)], margin
    )
    assert clear_drop.count("fail") / len(clear_drop) >= 0.95


def test_the_paired_interval_covers_the_true_difference():
    """Newcombe's interval of a paired difference of shares, over correlated pass/fail pairs:
    95% coverage within simulation error, and never a single point at 0% or 100%."""
    rng = np.random.default_rng(3)
    misses = 0
    runs = 1000
    for _ in range(runs):
        shared = rng.random(80)
        a = shared < 0.8
        b = np.where(rng.random(80) < 0.5, a, rng.random(80) < 0.7)
        truth = 0.8 - (0.5 * 0.8 + 0.5 * 0.7)
        _, (low, high) = stats.paired_difference_interval(a, b)
        misses += not low <= truth <= high
    assert misses / runs <= 0.07
    _, (low, high) = stats.paired_difference_interval(np.ones(10, bool), np.ones(10, bool))
    assert low < 0 < high


# ---- the demo, the command line ----


def test_the_demo_grades_its_outputs_and_shows_invalid_base_json(demo_store, settings):
    study = demo_store.studies.require_study(DEMO_STUDY)
    (version,) = demo_store.grading.study_graders(study["id"])
    assert version["name"] == "demo-format"
    lock(demo_store, DEMO_STUDY, params={"check": "json-valid"})
    rows = grading.grader_summary(looking(demo_store, DEMO_STUDY))["graders"]
    valid = {r["system"]: (r["passed"], r["n"]) for r in rows if r["check"] == "json-valid"}
    assert valid == {"base": (0, 2), "finetuned": (2, 2), "frontier": (1, 2)}


def test_cli_grade_hides_rates_before_the_lock_and_prints_them_after(
    store, corpus, capsys, cli_admin
):
    from review_app.cli import main

    assert main(["grade", "--study", "s", "--grader", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "(90 new, 0 already stored)" in out and "hidden until" in out
    lock(store)
    assert main(["grade", "--study", "s", "--grader", str(corpus), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["new"] == 0 and not document["outcomes_hidden"]
    row = next(
        r
        for r in document["graders"]
        if (r["check"], r["system"], r["category"]) == ("valid", "base", None)
    )
    assert (row["passed"], row["n"]) == (1, 4)


def test_cli_grade_with_a_bad_file_is_one_line(store, corpus, tmp_path, capsys, cli_admin):
    from review_app.cli import main

    path = write(tmp_path / "bad.yaml", "name: g\nchecks:\n  - name: a\n    type: nope\n")
    assert main(["grade", "--study", "s", "--grader", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:4" in err and "check 'a'" in err


def test_a_pattern_that_backtracks_without_end_stops_grading_in_one_line(
    store, corpus, tmp_path, capsys, monkeypatch, cli_admin
):
    from review_app.cli import main

    monkeypatch.setattr(graders, "REGEX_SECONDS", 0.2)
    outputs = pd.DataFrame(
        {
            "output_id": [1, 2],
            "item_key": ["quick", "slow"],
            "category": [None, None],
            "reference": [None, None],
            "text": ["b", "a" * 40 + "!"],
        }
    )
    grader = graders.parse_grader(
        "name: g\nchecks:\n  - name: greedy\n    type: regex\n    pattern: '(a|aa)+$'\n"
    )
    with pytest.raises(InputError, match=r"check 'greedy': .* ran over 0.2 s .* item 'slow'"):
        graders.run_checks(grader, outputs)
    # Through the command line: one line, nothing stored.
    rows = [
        {"item_id": "slow", "prompt": "p", "system": system, "output": "a" * 40 + "!"}
        for system in ("tuned", "base")
    ]
    source = write(tmp_path / "slow.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    data.import_outputs(store, source, "slow", actor=person(store))
    studies.create_study(
        store, "r", "slow", [("tuned", "base")], candidate="tuned", actor=person(store)
    )
    path = write(
        tmp_path / "slow.yaml",
        "name: g\nchecks:\n  - name: greedy\n    type: regex\n    pattern: '(a|aa)+$'\n",
    )
    before = store.table_counts()
    assert main(["grade", "--study", "r", "--grader", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ran over 0.2 s" in err
    assert store.table_counts() == before


def test_audit_verify_notices_a_removed_grader_trigger(store, corpus, settings):
    from review_app.services import audit

    grading.grade(acting(store, "s", "admin"), corpus)
    assert audit.verify(store, "s", settings) == []
    assert [e["action"] for e in store.audit.audit_entries(store.studies.require_study("s")["id"])][
        -1
    ] == "graded"
    store.db.execute("DROP TRIGGER grader_results_append_only_update")
    assert audit.verify(store, "s", settings) == [
        "table grader_results: the append-only UPDATE trigger is missing"
    ]
