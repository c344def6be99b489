"""The README is the manual: every command, setting and file format must be in it."""

import re
from pathlib import Path

from review_app.cli import build_parser
from review_app.settings import documented_settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            path = (*prefix, name)
            if sub._subparsers:
                yield from _commands(sub, path)
            else:
                yield path, sub


def _table_row(command: str) -> str | None:
    """The README's command-table row for exactly `command` (not one it is a prefix of)."""
    pattern = rf"^\| `{re.escape(command)}[ `].*$"
    match = re.search(pattern, README, re.M)
    return match.group(0) if match else None


def test_every_cli_command_and_option_is_documented():
    parser = build_parser()
    # Options every command takes (before or after its name) are documented once, above the table.
    everywhere = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    everywhere.discard("--help")
    for option in everywhere:
        assert re.search(rf"^Every command accepts .*`{option} ", README, re.M | re.S)
    for path, sub in _commands(parser):
        command = "review-app " + " ".join(path)
        row = _table_row(command)
        assert row, f"`{command}` has no row in the README's command table"
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in everywhere:
                    assert option in row, f"option {option} of `{command}` is not in its README row"


def test_every_setting_is_documented():
    for env, _, _ in documented_settings():
        assert f"`{env}`" in README, f"setting {env} is not in the README"


def test_every_file_format_is_documented():
    for heading in ("**Outputs**", "**Votes**", "**Verdicts**", "model_outputs.json"):
        assert heading in README
    from review_app import importers

    columns = importers.OUTPUT_COLUMNS + importers.OUTPUT_OPTIONAL + importers.VOTE_COLUMNS
    columns += importers.VOTE_OPTIONAL + importers.VERDICT_COLUMNS + importers.VERDICT_OPTIONAL
    for column in columns:
        assert re.search(rf"[`, ]{column}[`,]", README), f"column {column} is not in the README"


def test_quick_start_is_exactly_two_commands():
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    assert [line.split()[0:2] for line in block.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_no_paragraph_or_module_is_described_twice():
    sentences = [
        s.strip()
        for s in re.split(r"(?<=[.:;])\s+", re.sub(r"\s+", " ", README))
        if len(s.strip()) > 60
    ]
    repeated = {s for s in sentences if sentences.count(s) > 1}
    assert not repeated
    assert README.count("Every command accepts") == 1
    architecture = README.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    for module in ("stats.py", "gate.py", "quality.py", "report.py", "baselines.py"):
        described = re.findall(
            rf"^\s*(?:- \*\*[^*]+\*\*: )?`?{re.escape(module)}`?\s", architecture, re.M
        )
        assert len(described) == 1, module
