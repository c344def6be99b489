"""`review-app`: a thin command line over `services`. Every error the app knows about becomes one
line on stderr and exit status 1; argument mistakes exit 2 (argparse)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, TypeVar

from review_app import report
from review_app.errors import InputError, NotFound, ReviewAppError
from review_app.services import (
    calibration,
    data,
    demo,
    judging,
    people,
    signoff,
    studies,
    thresholds,
    workspace,
)
from review_app.settings import Settings, documented_settings

T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line too (exit status 2), like every other failure."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    """A finite number: nan and inf are no bar or effect anyone can mean."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    """A whole number that fits the workspace's integers (SQLite stores 64 bits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is out of range")
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {value}")
    return value


def _unencodable(args: argparse.Namespace) -> str | None:
    """The first argument that is not valid text (undecodable bytes on the command line arrive
    as lone surrogates, which the workspace cannot store), as the option's name."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return name
    return None


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if args.db:
        settings = replace(settings, db_path=Path(args.db))
    return settings


def _print(text: str = "") -> None:
    print(text, flush=True)


# ---- workspace ----


def add_workspace_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise the workspace: eval sets, systems, studies")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_info)

    p = sub.add_parser("settings", help="list every setting, its environment variable and value")
    p.set_defaults(handler=_settings_cmd, needs_store=False)


def _info(args, settings, store) -> None:
    summary = workspace.workspace_summary(store)
    if args.json:
        _print(json.dumps(summary, indent=2))
        return
    _print(f"workspace: {settings.db_path}")
    for es in summary["eval_sets"]:
        frozen = " (frozen)" if es["frozen"] else ""
        _print(f"eval set {es['name']}: {es['items']} items{frozen}")
    _print(f"systems: {', '.join(summary['systems']) or 'none'}")
    for s in summary["studies"]:
        _print(
            f"study {s['name']} over {s['eval_set']}: {', '.join(s['comparisons']) or 'no comparisons'};"
            f" {s['pairs']} pairs, {s['votes']} votes by {s['reviewers']} reviewers, "
            f"{s['judge_runs']} judge runs"
        )


def _settings_cmd(args, settings, store) -> None:
    for env, default, help_text in documented_settings():
        _print(f"{env} (default {default}): {help_text}")


# ---- import and export ----


def add_import_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import outputs, votes or verdicts from CSV/JSONL/JSON")
    kinds = p.add_subparsers(dest="kind", required=True)
    o = kinds.add_parser("outputs", help="model outputs (CSV, JSONL, or AlpacaEval .json)")
    o.add_argument("file")
    o.add_argument("--eval-set", required=True, help="eval set to import into (created if new)")
    o.add_argument("--replace", action="store_true", help="overwrite changed outputs or items")
    o.set_defaults(handler=_import_outputs)
    for kind, handler in (("votes", _import_votes), ("verdicts", _import_verdicts)):
        k = kinds.add_parser(kind, help=f"{kind} (CSV or JSONL)")
        k.add_argument("file")
        k.add_argument("--study", required=True)
        k.add_argument("--eval-set", help="create the study over this eval set if it is new")
        k.add_argument(
            "--candidate",
            metavar="SYSTEM",
            help="the system the study decides on (default: inferred, and the output says which)",
        )
        k.set_defaults(handler=handler)

    p = sub.add_parser("export", help="export votes, verdicts or pairs of a study")
    p.add_argument("what", choices=data.EXPORTS)
    p.add_argument("--study", required=True)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--output", help="file to write (default: standard output)")
    p.set_defaults(handler=_export)


def _import_outputs(args, settings, store) -> None:
    _print(data.import_outputs(store, args.file, args.eval_set, args.replace).line())


def _import_into_study(importer, args, store):
    """Votes and verdicts go into a study, which the import creates when `--eval-set` is given."""
    try:
        return importer(store, args.file, args.study, args.eval_set, args.candidate)
    except NotFound as exc:
        known = {row["name"] for row in studies.list_studies(store)}
        if args.eval_set is None and args.study not in known:
            raise NotFound(
                f"no study named {args.study!r}; pass --eval-set NAME to create it over that "
                "eval set"
            ) from exc
        raise


def _import_votes(args, settings, store) -> None:
    _print(_import_into_study(data.import_votes, args, store).line())


def _import_verdicts(args, settings, store) -> None:
    _print(_import_into_study(data.import_verdicts, args, store).line())


def _export(args, settings, store) -> None:
    from review_app.importers import export_rows

    rows = data.export_rows(store, args.what, args.study)
    columns = data.EXPORT_COLUMNS[args.what]
    if args.output:
        n = _write_output(
            args.output, settings, lambda handle: export_rows(rows, args.format, handle, columns)
        )
        print(f"wrote {n} {args.what} to {args.output}", file=sys.stderr)
    else:
        export_rows(rows, args.format, sys.stdout, columns)


def _write_output(name: str, settings: Settings, write: Callable[[IO[str]], T]) -> T:
    """Write the file named by --output through `write`, returning what it returns. Never the
    workspace's own files; written beside the target and renamed into place, so a failure (or
    Ctrl-C) leaves whatever was there before untouched."""
    target = Path(name)
    _refuse_workspace_files(target, settings)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            result = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)
    except OSError as exc:
        raise InputError(f"--output {name}: cannot write it ({exc.strerror or exc})") from exc
    finally:
        partial.unlink(missing_ok=True)
    return result


def _refuse_workspace_files(target: Path, settings: Settings) -> None:
    db = Path(settings.db_path).resolve()
    own = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    resolved = target.resolve()
    for path in own:
        if resolved == path or (path.exists() and target.exists() and target.samefile(path)):
            raise InputError(
                f"--output {target} is the workspace database {path.name}; write to another file"
            )


# ---- studies ----


def add_study_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="create and list studies")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create a study and build its pairs")
    c.add_argument("name")
    c.add_argument("--eval-set", required=True)
    c.add_argument(
        "--compare",
        action="append",
        required=True,
        metavar="SYS:SYS",
        help="a comparison, e.g. finetuned:base (repeatable)",
    )
    c.add_argument("--reviews-per-pair", type=_integer, default=3, metavar="K")
    c.add_argument("--show-reference", action="store_true", help="show reviewers the reference")
    c.add_argument(
        "--criteria",
        default="",
        help="comma-separated criteria reviewers rate 1-5, e.g. accuracy,tone",
    )
    c.add_argument(
        "--candidate",
        metavar="SYSTEM",
        help="the system the gate decides on (default: the first system of the first --compare)",
    )
    c.set_defaults(handler=_study_create)
    cand = actions.add_parser(
        "candidate", help="name the system a study decides on (before the lock)"
    )
    cand.add_argument("name")
    cand.add_argument("system")
    cand.set_defaults(handler=_study_candidate)
    ls = actions.add_parser("list", help="list studies")
    ls.set_defaults(handler=_study_list)


def _study_create(args, settings, store) -> None:
    comparisons = [studies.parse_comparison(c) for c in args.compare]
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    summary = studies.create_study(
        store,
        args.name,
        args.eval_set,
        comparisons,
        args.reviews_per_pair,
        args.show_reference,
        criteria,
        candidate=args.candidate,
    )
    skipped = "; ".join(
        f"{c}: {n} items lack an output" for c, n in summary.skipped_items.items() if n
    )
    _print(
        f"study {summary.name}: {summary.pairs_added} pairs over eval set {summary.eval_set} "
        f"(frozen, hash {summary.eval_set_hash[:12]}); candidate {summary.candidate}"
        + (f"; {skipped}" if skipped else "")
    )


def _study_candidate(args, settings, store) -> None:
    studies.set_candidate(store, args.name, args.system)
    _print(f"study {args.name}: candidate {args.system}")


def _study_list(args, settings, store) -> None:
    for s in workspace.workspace_summary(store)["studies"]:
        _print(
            f"{s['name']}\t{s['eval_set']}\tcandidate {s['candidate']}\t{s['pairs']} pairs\t"
            f"{s['votes']} votes"
        )


# ---- reviewers ----


def add_reviewer_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reviewers", help="add, list and revoke reviewers")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="add a reviewer; the last line printed is their link")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=("reviewer", "admin", "signer"))
    a.add_argument("--study", help="the study the reviewer works on")
    a.set_defaults(handler=_reviewers_add)
    ls = actions.add_parser("list", help="list reviewers")
    ls.set_defaults(handler=_reviewers_list)
    r = actions.add_parser("revoke", help="revoke a reviewer's link")
    r.add_argument("name")
    r.set_defaults(handler=_reviewers_revoke)


def _reviewers_add(args, settings, store) -> None:
    reviewer, link = people.add_reviewer(store, settings, args.name, args.role, args.study)
    _print(f"{reviewer['name']} ({reviewer['role']}): send them this personal link")
    _print(link)


def _reviewers_list(args, settings, store) -> None:
    for r in people.list_reviewers(store):
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        _print(
            f"{r['name']}\t{r['role']}\t{r['study'] or '-'}\t{r['n_votes']} pairs voted\t{state}"
        )


def _reviewers_revoke(args, settings, store) -> None:
    people.revoke_reviewer(store, args.name)
    _print(f"revoked {args.name}")


# ---- serving ----


def add_serve_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8501)
    p.set_defaults(handler=_serve)
    d = sub.add_parser("demo", help="load the demo data, print links, and start the web app")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=_port, default=8501)
    d.add_argument("--no-serve", action="store_true", help="only load the demo data")
    d.set_defaults(handler=_demo)


def _serve(args, settings, store) -> None:
    store.close()
    app = Path(__file__).resolve().parent / "streamlit_app.py"
    env = dict(os.environ, REVIEW_APP_DB=str(Path(settings.db_path).resolve()))
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        # Visitors see a generic error, never a traceback (it names files, queries and data);
        # the details go to this terminal. review_app/.streamlit/config.toml says the same for
        # `streamlit run`.
        "--client.showErrorDetails",
        "none",
    ]
    _print(f"serving {settings.db_path} on http://{args.host}:{args.port} (Ctrl+C to stop)")
    server = subprocess.Popen(command, env=env)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached the server too (same terminal): stopping it is how serving ends.
        code = server.wait()
    raise SystemExit(code)


def _demo(args, settings, store) -> None:
    base = f"http://{args.host}:{args.port}"
    settings = replace(settings, base_url=base)
    links = demo.seed_demo(store, settings)
    summary = workspace.workspace_summary(store)
    study = next(s for s in summary["studies"] if s["name"] == demo.DEMO_STUDY)
    _print(
        f"demo workspace {settings.db_path}: study '{study['name']}' with {study['pairs']} pairs, "
        f"{study['votes']} example votes"
    )
    _print("Open one of these personal links:")
    for name, link in links.items():
        _print(f"  {name:14} {link}")
    if not args.no_serve:
        _serve(args, settings, store)


# ---- calibration ----


def add_calibration_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats", help="calibration statistics of a study: humans, judges, baselines, categories"
    )
    p.add_argument("--study", required=True)
    p.add_argument("--json", action="store_true", help="print the documented JSON document")
    p.set_defaults(handler=_stats)


def _fmt_estimate(estimate: dict | None) -> str:
    if estimate is None or estimate["value"] is None:
        return "-"
    text = f"{estimate['value']:.2f}"
    if estimate.get("ci"):
        lo, hi = estimate["ci"]
        text += f" [{lo:.2f},{hi:.2f}]"
    return f"{text} n={estimate['n']}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return lines


def _stats(args, settings, store) -> None:
    report = calibration.calibration_report(store, args.study, settings)
    document = report.document()
    if args.json:
        _print(json.dumps(document, indent=2))
        return
    humans = document["humans"]
    _print(
        f"study {args.study}: {document['n_comparisons']} comparisons, {document['n_votes']} votes"
    )
    _print("")
    _print("humans (the ceiling a judge is measured against)")
    for name, value in (
        ("strict agreement", humans["agreement_strict"]),
        ("agreement with ties", humans["agreement"]["with_ties"]),
        ("agreement without ties", humans["agreement"]["without_ties"]),
        ("kappa with ties", humans["kappa"]["with_ties"]),
        ("kappa without ties", humans["kappa"]["without_ties"]),
        ("Fleiss' kappa", humans["fleiss_kappa"]),
        ("Krippendorff's alpha", humans["krippendorff_alpha"]),
        ("p_left", humans["p_left"]),
        ("p_longer", humans["p_longer"]),
    ):
        _print(f"  {name:24} {_fmt_estimate(value)}")
    _print("")
    rows = []
    for judge in document["judges"]:
        info = report.judges.get(judge["judge"])
        rows.append(
            [
                judge["judge"],
                judge["vs_ceiling"]["verdict"],
                _fmt_estimate(judge["agreement_strict"]),
                _fmt_estimate(judge["decisive_share"]),
                _fmt_estimate(judge["agreement"]["without_ties"]),
                _fmt_estimate(judge["agreement"]["with_ties"]),
                _fmt_estimate(judge["kappa"]["without_ties"]),
                _fmt_estimate(judge["consistency"]),
                _fmt_estimate(judge["p_first"]),
                _fmt_estimate(judge["p_longer"]),
                str(judge["n_unparsed"]),
                info.source if info else "",
            ]
        )
    headers = [
        "judge",
        "vs ceiling",
        "strict agreement",
        "decisive share",
        "agreement w/o ties",
        "agreement w/ ties",
        "kappa w/o ties",
        "consistency",
        "p_first",
        "p_longer",
        "unparsed",
        "source",
    ]
    for line in _table(headers, rows):
        _print(line)
    _print("")
    for label, assessment in report.assessments.items():
        _print(f"{label}: {assessment.text}")
    if document["by_category"]:
        _print("")
        _print("agreement without ties by category")
        labels = [j["judge"] for j in document["judges"]]
        rows = []
        for category, section in document["by_category"].items():
            by_judge = {j["judge"]: j for j in section["judges"]}
            rows.append(
                [category, _fmt_estimate(section["humans"]["agreement"]["without_ties"])]
                + [
                    _fmt_estimate(by_judge[label]["agreement"]["without_ties"])
                    if label in by_judge
                    else "-"
                    for label in labels
                ]
            )
        for line in _table(["category", "humans", *labels], rows):
            _print(line)
    if report.warnings:
        _print("")
        for warning in report.warnings:
            _print(f"warning: {warning}")


# ---- gate ----


def add_gate_commands(sub: argparse._SubParsersAction) -> None:
    from review_app.gate import COMPARATORS, METRICS

    p = sub.add_parser("thresholds", help="pre-register, list and lock a study's gate thresholds")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="add a threshold (after the lock: a recorded deviation)")
    a.add_argument("--study", required=True)
    a.add_argument("--metric", required=True, choices=list(METRICS))
    a.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="metric parameter, e.g. system_a=finetuned (repeatable)",
    )
    a.add_argument("--comparator", choices=COMPARATORS, help="default: the metric's usual one")
    a.add_argument("--value", required=True, type=_number)
    a.add_argument("--by", default="cli", help="who makes the change (recorded)")
    a.add_argument("--reason", default="", help="required once the thresholds are locked")
    a.set_defaults(handler=_thresholds_add)
    ls = actions.add_parser("list", help="list thresholds and the lock")
    ls.add_argument("--study", required=True)
    ls.set_defaults(handler=_thresholds_list)
    lk = actions.add_parser("lock", help="lock the thresholds before looking at results")
    lk.add_argument("--study", required=True)
    lk.add_argument("--by", required=True, help="who locks them (recorded)")
    lk.set_defaults(handler=_thresholds_lock)
    rm = actions.add_parser("remove", help="remove a threshold by id")
    rm.add_argument("id", type=_integer)
    rm.add_argument("--study", required=True)
    rm.add_argument("--by", default="cli")
    rm.add_argument("--reason", default="")
    rm.set_defaults(handler=_thresholds_remove)

    r = sub.add_parser("report", help="export the sign-off report")
    r.add_argument("--study", required=True)
    r.add_argument("--format", choices=report.REPORT_FORMATS, default="md")
    r.add_argument("--output", help="file to write (default: standard output)")
    r.set_defaults(handler=_report)

    s = sub.add_parser("signoff", help="approve or reject the study as a signer")
    s.add_argument("--study", required=True)
    s.add_argument("--signer", required=True, help="name of a reviewer with the signer role")
    s.add_argument("--decision", required=True, choices=("approve", "reject"))
    s.add_argument("--comment", required=True)
    s.add_argument(
        "--override",
        default="",
        metavar="REASON",
        help="approve although the gate did not pass or the final review is incomplete (recorded "
        "and shown in the report)",
    )
    s.set_defaults(handler=_signoff)

    pl = sub.add_parser(
        "plan", help="how many comparisons each threshold needs to be decided (80%% power)"
    )
    pl.add_argument("--study", required=True)
    pl.add_argument(
        "--effect",
        type=_number,
        default=None,
        help="expected distance from each bar in the passing direction (default: 0.1 for "
        "shares, 10 for points)",
    )
    pl.set_defaults(handler=_plan)


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param {pair!r}: expected NAME=VALUE")
        params[name.strip()] = value.strip()
    return params


def _thresholds_add(args, settings, store) -> None:
    new_id = thresholds.add_threshold(
        store,
        args.study,
        args.metric,
        _params(args.param),
        args.comparator,
        args.value,
        args.by,
        args.reason,
    )
    _print(f"threshold {new_id} added")


def _thresholds_list(args, settings, store) -> None:
    lock = thresholds.threshold_lock(store, args.study)
    for t in thresholds.list_thresholds(store, args.study):
        _print(f"{t['id']}\t{t['description']}")
    if lock:
        _print(
            f"locked by {lock['locked_by']} at {lock['locked_at']} (hash {lock['content_hash']})"
        )
    else:
        _print("not locked: outcome numbers stay hidden until the thresholds are locked")


def _thresholds_lock(args, settings, store) -> None:
    content_hash = thresholds.lock_thresholds(store, args.study, args.by, settings)
    _print(f"locked; thresholds hash {content_hash}")


def _thresholds_remove(args, settings, store) -> None:
    thresholds.remove_threshold(store, args.study, args.id, args.by, args.reason)
    _print(f"threshold {args.id} removed")


def _report(args, settings, store) -> None:
    def text() -> str:
        return report.render_report(signoff.build_report(store, args.study, settings), args.format)

    if args.output:
        _write_output(args.output, settings, lambda handle: handle.write(text()))
        print(f"wrote the {args.format} report to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text())


def _signoff(args, settings, store) -> None:
    signer = people.reviewer_named(store, args.signer)
    report = signoff.sign_off(
        store, args.study, signer, args.decision, args.comment, settings, override=args.override
    )
    last = report["signoffs"][-1]
    override = f"; override of a {last['gate_result']} gate recorded" if last["override"] else ""
    _print(
        f"{last['decision']} recorded for study {args.study} (report hash "
        f"{last['report_hash']}){override}"
    )


def _plan(args, settings, store) -> None:
    for row in thresholds.sample_plan(store, args.study, settings, args.effect):
        _print(
            f"{row['description']}\tneeds {row['needed']} comparisons (now {row['now']}) at an "
            f"expected {row['expected']}: {row['basis']}"
        )


# ---- judge ----


def add_judge_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a study's pairs with an LLM or baseline judge (resumes an earlier run)",
        description="Judge every pair of a study, in both orders unless --single-order. Only "
        "calls the run does not hold yet are sent, so re-running the same command resumes.",
    )
    p.add_argument("--study", required=True)
    p.add_argument("--rubric", required=True, metavar="FILE", help="rubric YAML file")
    p.add_argument(
        "--judge",
        required=True,
        metavar="PROVIDER/MODEL",
        help="openai/MODEL, anthropic/MODEL, or baseline/longest|shortest|first|random",
    )
    p.add_argument("--concurrency", type=_integer, default=8, metavar="N", help="calls in flight")
    p.add_argument("--rpm", type=_integer, metavar="N", help="at most N requests per minute")
    p.add_argument("--tpm", type=_integer, metavar="N", help="at most N tokens per minute")
    p.add_argument(
        "--single-order",
        action="store_true",
        help="judge each pair once, in a seeded random order, instead of in both orders",
    )
    p.add_argument("--seed", type=_integer, metavar="N", help="seed (default $REVIEW_APP_SEED)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the calls and estimated cost; send nothing"
    )
    p.set_defaults(handler=_judge)

    r = sub.add_parser("judge-runs", help="list a study's judge runs with their totals")
    r.add_argument("--study", required=True)
    r.add_argument(
        "--failures", type=_integer, metavar="RUN_ID", help="show a run's unparsed answers"
    )
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(handler=_judge_runs)


class _ProgressBar:
    """One self-rewriting line on a terminal; occasional plain lines when stderr is a file."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p) -> None:
        now = p.elapsed_s
        finished = p.done == p.total
        if not finished and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        cost = "cost ?" if p.cost_unknown else f"${p.cost:.4f}"
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} calls, "
            f"{p.unparsed} unparsed, {p.failed} failed, {cost}, {now:.1f}s"
        )
        end = "\n" if finished or not self.tty else ""
        print(("\r" if self.tty else "") + text, end=end, file=sys.stderr, flush=True)


def _judge(args, settings, store) -> None:
    both_orders = not args.single_order
    plan = judging.plan_judge_run(
        store, settings, args.study, args.rubric, args.judge, both_orders, args.seed
    )
    if args.dry_run:
        _print(plan.line())
        return
    outcome = judging.start_judge_run(
        store,
        settings,
        args.study,
        args.rubric,
        args.judge,
        both_orders=both_orders,
        seed=args.seed,
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        on_progress=_ProgressBar(),
        on_start=lambda plan: print(plan.line(), file=sys.stderr, flush=True),
    )
    _print(outcome.line())
    if outcome.failures:
        for failure in outcome.failures[:10]:
            print(f"failed: {failure}", file=sys.stderr)
        raise ReviewAppError(
            f"{len(outcome.failures)} calls failed after retries and were not stored; "
            "run the same command again to send only those"
        )


def _judge_runs(args, settings, store) -> None:
    if args.failures is not None:
        rows = judging.judge_run_failures(store, args.failures)
        if args.json:
            _print(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        for row in rows:
            _print(f"{row['item_key']} ({row['first_system']} first): {row['parse_error']}")
            _print("  raw: " + (row["raw_text"] or "(empty)").replace("\n", "\n  "))
        return
    runs = judging.judge_runs(store, settings, args.study)
    if args.json:
        _print(json.dumps(runs, indent=2))
        return
    for run in runs:
        cost = "?" if run["cost"] is None else f"${run['cost']:.4f}"
        missing = "" if run["missing"] is None else f", {run['missing']} missing"
        _print(
            f"{run['id']}\t{run['label']}\t{run['status']}\t{run['verdicts']} verdicts "
            f"({run['unparsed']} unparsed{missing})\t{cost}"
        )


# ---- entry point ----


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="review-app",
        description="Blind human review, LLM-judge calibration and the final human gate.",
    )
    parser.add_argument("--db", help="workspace file (default: $REVIEW_APP_DB, else ./review.db)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_workspace_commands(sub)
    add_import_commands(sub)
    add_study_commands(sub)
    add_reviewer_commands(sub)
    add_gate_commands(sub)
    add_serve_commands(sub)
    add_calibration_commands(sub)
    add_judge_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unencodable = _unencodable(args)
    if unencodable:
        parser.error(f"argument {unencodable.replace('_', '-')}: not valid UTF-8 text")
    try:
        settings = _settings(args)
        store = (
            None if getattr(args, "needs_store", True) is False else workspace.open_store(settings)
        )
        try:
            args.handler(args, settings, store)
        finally:
            if store is not None:
                store.close()
    except ReviewAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Every change runs in one transaction, rolled back when interrupted; a judge run keeps
        # each verdict it stored before.
        print(
            "error: interrupted; the unfinished change was rolled back (a judge run keeps the "
            "verdicts it had already stored)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # The reader went away (`review-app export ... | head`): that is not an error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, sqlite3.Error) as exc:
        # A file that cannot be written or a --db that is not a workspace: one line, not a trace.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
