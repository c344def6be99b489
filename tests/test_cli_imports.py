"""`review-app serve` starts the app's server without first importing what only other commands use
(the services, SciPy, the gate, the report): the command line imports a command's modules when
that command runs. The parser's choices, copied into the command line for that, are those of the
modules that act on them."""

from __future__ import annotations

import json
import subprocess
import sys

from review_app import cli

# What a server start may import of the app besides the store: the modules it opens the
# workspace and recovers interrupted imports with. (pandas, numpy and pyarrow come all the same:
# sqlite-utils, which the store opens a SQLite workspace with, imports pandas when it is there.)
SERVE_IMPORTS = {
    "review_app",
    "review_app.cli",
    "review_app.errors",
    "review_app.links",
    "review_app.migrations",
    "review_app.server",
    "review_app.services",
    "review_app.services.import_recovery",
    "review_app.services.workspace",
    "review_app.settings",
}

# `review-app serve` as a user runs it, with the start of the app's server replaced by a list
# of the modules imported by then.
SERVE = """
import json, sys
from review_app import cli, server
def run_app(settings, on_ready=None):
    print(json.dumps(sorted(sys.modules)))
    return 0
server.run_app = run_app
raise SystemExit(cli.main(sys.argv[1:]))
"""


def serve(workspace, tmp_path) -> tuple[list[str], set[str]]:
    """The lines `serve` printed before it started the server, and the modules it had imported."""
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "--db", str(workspace), "serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    *lines, modules = done.stdout.splitlines()
    return lines, set(json.loads(modules))


def test_serve_imports_neither_scipy_nor_the_services(store, isolated_workspace, tmp_path):
    lines, modules = serve(isolated_workspace, tmp_path)
    assert lines[0].startswith("serving ")
    assert "scipy" not in modules
    app = {m for m in modules if m.split(".")[0] == "review_app"}
    extra = {m for m in app - SERVE_IMPORTS if not m.startswith("review_app.store")}
    assert not extra, f"serve imported {sorted(extra)}"

    # An import whose process died is still dealt with before the server starts.
    with store.transaction():
        job_id = store.imports.insert_import_job("outputs", "old.jsonl", "e", {}, 1, "another-host")
        store.imports.touch_import_job(job_id, heartbeat=0)
    lines, _ = serve(isolated_workspace, tmp_path)
    assert lines[0] == "discarded the unfinished import of old.jsonl into e; nothing of it was kept"
    assert store.imports.import_jobs() == []


def test_the_parsers_choices_are_those_of_the_modules_that_act_on_them():
    from review_app import gate, report
    from review_app.services import data, datasets, rubric_iteration, study_data

    assert cli._SPLITS == study_data.SPLITS
    assert cli._EXPORTS == data.EXPORTS
    assert cli._DATASET_FORMATS == datasets.DATASET_FORMATS
    assert cli._DEFAULT_TEST_SHARE == rubric_iteration.DEFAULT_TEST_SHARE
    assert cli._REPORT_FORMATS == report.REPORT_FORMATS
    assert cli._COMPARATORS == gate.COMPARATORS
    assert cli._METRICS == tuple(gate.METRICS)
