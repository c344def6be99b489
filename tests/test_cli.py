import json
import shlex
import subprocess
import sys

import pytest

from review_app.cli import main
from tests.conftest import write

OUTPUTS = (
    "item_id,prompt,system,output,category\n"
    "q1,Capital of France?,base,Paris,geo\n"
    "q1,Capital of France?,finetuned,Paris.,geo\n"
    "q2,2+2?,base,4,math\n"
    "q2,2+2?,finetuned,5,math\n"
)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_create_study_export_with_db_flag(tmp_path, capsys):
    db = str(tmp_path / "flag.db")
    write(tmp_path / "o.csv", OUTPUTS)
    code, out, _ = run(capsys, "--db", db, "reviewers", "add", "boss", "--role", "admin")
    as_boss = ("--db", db, "--token", out.strip().splitlines()[-1].split("token=")[1])
    code, out, _ = run(
        capsys, *as_boss, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e"
    )
    assert code == 0 and "2 items added, 4 outputs added" in out
    code, out, _ = run(
        capsys, *as_boss, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base"
    )
    assert code == 0 and out.startswith("study s: 2 pairs over eval set e (frozen")
    code, out, _ = run(capsys, "--db", db, "export", "pairs", "--study", "s", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["item_id"], r["system_x"], r["system_y"]) for r in rows] == [
        ("q1", "base", "finetuned"),
        ("q2", "base", "finetuned"),
    ]


def test_db_defaults_to_environment_variable(isolated_workspace, tmp_path, capsys, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    assert run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")[0] == 0
    assert isolated_workspace.exists()


def test_errors_are_one_line_on_stderr_with_status_1(tmp_path, capsys, cli_admin):
    write(tmp_path / "bad.jsonl", '{"item_id": "q1", "prompt": "p", "system": "b", "output": 1}\n')
    code, out, err = run(
        capsys, "import", "outputs", str(tmp_path / "bad.jsonl"), "--eval-set", "e"
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert (
        err == f"error: {tmp_path / 'bad.jsonl'}:1: field 'output': expected text, got a number 1\n"
    )


def test_study_create_names_an_unknown_system(tmp_path, capsys, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    code, _, err = run(
        capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:gpt"
    )
    assert code == 1 and "no system named 'gpt'" in err
    code, _, err = run(capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned")
    assert code == 1 and "expected SYSTEM:SYSTEM" in err


def first_admin(capsys) -> str:
    """The workspace's first admin, made without a token; returns their token."""
    code, out, _ = run(capsys, "reviewers", "add", "boss", "--role", "admin")
    assert code == 0
    return out.strip().splitlines()[-1].split("token=")[1]


def test_reviewers_add_prints_the_link_last_and_revoke_blocks_it(tmp_path, capsys, store):
    from review_app.services import people

    write(tmp_path / "o.csv", OUTPUTS)
    admin = first_admin(capsys)
    run(capsys, "--token", admin, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    create = ("study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base")
    assert run(capsys, "--token", admin, *create)[0] == 0
    code, _, err = run(capsys, "reviewers", "add", "ann", "--role", "reviewer")
    assert code == 1 and "pass --token TOKEN" in err  # only the first admin needs none
    code, out, _ = run(
        capsys, "--token", admin, "reviewers", "add", "ann", "--role", "reviewer", "--study", "s"
    )
    link = out.strip().splitlines()[-1]
    assert code == 0 and link.startswith("http://127.0.0.1:8501/?token=")
    token = link.split("token=")[1]
    assert len(token) >= 32
    assert token not in open(store.path, "rb").read().decode("latin-1")
    assert people.authenticate(store, token)["name"] == "ann"
    # A reviewer's own link cannot revoke anyone.
    code, _, err = run(capsys, "--token", token, "reviewers", "revoke", "boss")
    assert code == 1 and "ann (reviewer) may not manage links" in err
    assert run(capsys, "--token", admin, "reviewers", "revoke", "ann")[0] == 0
    _, out, _ = run(capsys, "reviewers", "list")
    assert "ann\treviewer\ts\t0 pairs voted\trevoked" in out
    import pytest

    from review_app.errors import Forbidden

    with pytest.raises(Forbidden, match="revoked"):
        people.authenticate(store, token)


def test_demo_command_seeds_without_serving(capsys):
    code, out, _ = run(capsys, "demo", "--no-serve")
    assert code == 0
    assert "study 'demo'" in out
    assert out.count("?token=") == 3


def test_a_failed_export_leaves_the_existing_file_alone(tmp_path, capsys, store):
    keep = write(tmp_path / "keep.csv", "precious\n")
    code, _, err = run(capsys, "export", "votes", "--study", "nope", "--output", str(keep))
    assert code == 1 and "no study named 'nope'" in err
    assert keep.read_text() == "precious\n"
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_an_empty_export_still_has_its_header_and_imports_back(tmp_path, capsys, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    run(capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base")
    out = tmp_path / "votes.csv"
    code, _, err = run(capsys, "export", "votes", "--study", "s", "--output", str(out))
    assert code == 1 and "hidden until its thresholds are locked" in err
    admin = ("--token", first_admin(capsys))
    run(
        capsys,
        *admin,
        "thresholds",
        "add",
        "--study",
        "s",
        "--metric",
        "final_review_acceptable_rate",
        "--value",
        "0.9",
    )
    run(capsys, *admin, "thresholds", "lock", "--study", "s", "--reason", "a small test study")
    assert run(capsys, "export", "votes", "--study", "s", "--output", str(out))[0] == 0
    assert (
        out.read_text()
        == "item_id,system_a,system_b,reviewer,winner,shown_left,rationale,created_at,criteria\n"
    )
    assert run(capsys, "import", "votes", str(out), "--study", "s")[0] == 0


def test_a_file_that_is_not_a_workspace_is_one_line(tmp_path, capsys):
    bogus = write(tmp_path / "bogus.db", "this is not sqlite" * 100)
    code, _, err = run(capsys, "--db", str(bogus), "info")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run(
        capsys, "export", "pairs", "--study", "x", "--output", str(tmp_path / "no/dir/x.csv")
    )
    assert code == 1 and err.count("\n") == 1


def test_reissuing_a_link_can_move_the_reviewer_to_a_study(tmp_path, capsys, store, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    run(capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base")
    run(capsys, "study", "create", "t", "--eval-set", "e", "--compare", "base:finetuned")
    admin = ("--token", first_admin(capsys))
    run(capsys, *admin, "reviewers", "add", "ann", "--role", "reviewer")
    # Replacing someone's link silently would let an admin act as them: it must be asked for.
    code, _, err = run(capsys, *admin, "reviewers", "add", "ann", "--role", "signer")
    assert code == 1 and "already has a reviewer link" in err
    assert store.people.reviewer("ann")["role"] == "reviewer"
    run(
        capsys, *admin, "reviewers", "add", "ann", "--role", "reviewer", "--study", "t", "--reissue"
    )
    assert store.people.reviewer("ann")["study_id"] == store.studies.require_study("t")["id"]
    run(capsys, *admin, "reviewers", "add", "ann", "--role", "signer", "--reissue")
    assert store.people.reviewer("ann")["study_id"] == store.studies.require_study("t")["id"]
    assert store.people.reviewer("ann")["role"] == "signer"
    logged = [
        (e["actor"], e["action"]) for e in store.audit.audit_entries() if "link" in e["action"]
    ]
    assert logged == [("boss", "link reissued"), ("boss", "link reissued")]


def test_importing_votes_into_a_new_study_names_the_flag_that_creates_it(
    tmp_path, capsys, cli_admin
):
    write(tmp_path / "o.csv", OUTPUTS)
    run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    write(
        tmp_path / "v.csv",
        "item_id,system_a,system_b,reviewer,winner\nq1,finetuned,base,ann,finetuned\n",
    )
    code, _, err = run(capsys, "import", "votes", str(tmp_path / "v.csv"), "--study", "new")
    assert code == 1
    assert err == (
        "error: no study named 'new'; pass --eval-set NAME to create it over that eval set\n"
    )


def test_an_export_read_by_head_ends_quietly_with_status_0(tmp_path, capsys):
    """The reader closing the pipe early is not an error (`review-app export ... | head -1`)."""
    db = tmp_path / "pipe.db"
    rows = "".join(f"q{i},Prompt {i}?,{s},Answer {i} {s},geo\n" for i in range(3000) for s in "ab")
    write(tmp_path / "o.csv", "item_id,prompt,system,output,category\n" + rows)
    _, out, _ = run(capsys, "--db", str(db), "reviewers", "add", "boss", "--role", "admin")
    as_boss = ["--db", str(db), "--token", out.strip().splitlines()[-1].split("token=")[1]]
    assert main([*as_boss, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e"]) == 0
    assert main([*as_boss, "study", "create", "s", "--eval-set", "e", "--compare", "a:b"]) == 0
    command = (
        f"{shlex.quote(sys.executable)} -m review_app.cli --db {shlex.quote(str(db))} "
        "export pairs --study s --format jsonl | head -1"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120
    )
    assert done.stderr == ""
    assert done.returncode == 0
    assert json.loads(done.stdout)["item_id"] == "q0"


READ_ONLY = [
    ["info"],
    ["info", "--json"],
    ["stats", "--study", "s"],
    ["export", "votes", "--study", "s"],
    ["report", "--study", "s", "--format", "md"],
    ["study", "list"],
    ["reviewers", "list"],
    ["reviewers", "stats", "--study", "s"],
    ["known-answers", "list", "--study", "s"],
    ["thresholds", "list", "--study", "s"],
    ["judge-runs", "--study", "s"],
    ["judge", "--study", "s", "--rubric", "r.yaml", "--judge", "baseline/first", "--dry-run"],
]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: " ".join(a[:2]))
def test_read_only_commands_refuse_a_missing_workspace_and_create_nothing(tmp_path, capsys, argv):
    missing = tmp_path / "typo" / "workspace.db"
    code, out, err = run(capsys, "--db", str(missing), *argv)
    assert code == 1 and out == ""
    assert err == (
        f"error: no workspace at {missing}: point --db or REVIEW_APP_DB at one, or start one "
        "with `review-app import outputs` or `review-app demo`\n"
    )
    assert not missing.parent.exists()


def test_study_guidelines_from_files(tmp_path, capsys, store, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")
    rules = write(tmp_path / "rules.md", "# Rules\r\n\r\n- Correct beats polished.\r\n")
    code, out, _ = run(
        capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base",
        "--guidelines", str(rules),
    )  # fmt: skip
    assert code == 0
    current = store.studies.current_guidelines(store.studies.require_study("s")["id"])
    assert current["body"] == "# Rules\n\n- Correct beats polished.\n"
    assert current["set_by"] == "admin"  # the holder of the token the command was given
    code, out, _ = run(capsys, "study", "guidelines", "s", str(rules))
    assert code == 0 and "already in force" in out
    write(tmp_path / "v2.md", "# Rules v2\n")
    code, out, _ = run(capsys, "study", "guidelines", "s", str(tmp_path / "v2.md"))
    assert code == 0 and out.startswith("guidelines ") and "in force for study s" in out
    code, _, err = run(capsys, "study", "guidelines", "s", str(tmp_path / "missing.md"))
    assert code == 1 and err == f"error: {tmp_path / 'missing.md'}: no such guidelines file\n"
    write(tmp_path / "empty.md", "  \n")
    code, _, err = run(capsys, "study", "guidelines", "s", str(tmp_path / "empty.md"))
    assert code == 1 and "guidelines are empty" in err


def test_every_token_can_follow_the_token_option():
    from review_app import auth

    # A token that starts with "-" would read as an option; 2,000 draws meet one ~31 times.
    tokens = [auth.new_token() for _ in range(2000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == len(tokens) and {len(t) for t in tokens} == {32}
