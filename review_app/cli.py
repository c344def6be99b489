"""`review-app`: a thin command line over `services`. Every error the app knows about becomes one
line on stderr and exit status 1; argument mistakes exit 2 (argparse)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from review_app import services
from review_app.errors import ReviewAppError
from review_app.settings import Settings, documented_settings


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
    summary = services.workspace_summary(store)
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
        k.set_defaults(handler=handler)

    p = sub.add_parser("export", help="export votes, verdicts or pairs of a study")
    p.add_argument("what", choices=services.EXPORTS)
    p.add_argument("--study", required=True)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--output", help="file to write (default: standard output)")
    p.set_defaults(handler=_export)


def _import_outputs(args, settings, store) -> None:
    _print(services.import_outputs(store, args.file, args.eval_set, args.replace).line())


def _import_votes(args, settings, store) -> None:
    _print(services.import_votes(store, args.file, args.study, args.eval_set).line())


def _import_verdicts(args, settings, store) -> None:
    _print(services.import_verdicts(store, args.file, args.study, args.eval_set).line())


def _export(args, settings, store) -> None:
    from review_app.importers import export_rows

    rows = services.export_rows(store, args.what, args.study)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as handle:
            n = export_rows(rows, args.format, handle)
        print(f"wrote {n} {args.what} to {args.output}", file=sys.stderr)
    else:
        export_rows(rows, args.format, sys.stdout)


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
    c.add_argument("--reviews-per-pair", type=int, default=3, metavar="K")
    c.add_argument("--show-reference", action="store_true", help="show reviewers the reference")
    c.add_argument(
        "--criteria",
        default="",
        help="comma-separated criteria reviewers rate 1-5, e.g. accuracy,tone",
    )
    c.set_defaults(handler=_study_create)
    ls = actions.add_parser("list", help="list studies")
    ls.set_defaults(handler=_study_list)


def _study_create(args, settings, store) -> None:
    comparisons = [services.parse_comparison(c) for c in args.compare]
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    summary = services.create_study(
        store,
        args.name,
        args.eval_set,
        comparisons,
        args.reviews_per_pair,
        args.show_reference,
        criteria,
    )
    skipped = "; ".join(
        f"{c}: {n} items lack an output" for c, n in summary.skipped_items.items() if n
    )
    _print(
        f"study {summary.name}: {summary.pairs_added} pairs over eval set {summary.eval_set} "
        f"(frozen, hash {summary.eval_set_hash[:12]})" + (f"; {skipped}" if skipped else "")
    )


def _study_list(args, settings, store) -> None:
    for s in services.workspace_summary(store)["studies"]:
        _print(f"{s['name']}\t{s['eval_set']}\t{s['pairs']} pairs\t{s['votes']} votes")


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
    reviewer, link = services.add_reviewer(store, settings, args.name, args.role, args.study)
    _print(f"{reviewer['name']} ({reviewer['role']}): send them this personal link")
    _print(link)


def _reviewers_list(args, settings, store) -> None:
    for r in services.list_reviewers(store):
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        _print(
            f"{r['name']}\t{r['role']}\t{r['study'] or '-'}\t{r['n_votes']} pairs voted\t{state}"
        )


def _reviewers_revoke(args, settings, store) -> None:
    services.revoke_reviewer(store, args.name)
    _print(f"revoked {args.name}")


# ---- serving ----


def add_serve_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(handler=_serve)
    d = sub.add_parser("demo", help="load the demo data, print links, and start the web app")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8501)
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
        # Reviewers need no developer menu (deploy, rerun, settings).
        "--client.toolbarMode",
        "minimal",
    ]
    _print(f"serving {settings.db_path} on http://{args.host}:{args.port} (Ctrl+C to stop)")
    raise SystemExit(subprocess.call(command, env=env))


def _demo(args, settings, store) -> None:
    base = f"http://{args.host}:{args.port}"
    settings = replace(settings, base_url=base)
    links = services.seed_demo(store, settings)
    summary = services.workspace_summary(store)
    study = next(s for s in summary["studies"] if s["name"] == services.DEMO_STUDY)
    _print(
        f"demo workspace {settings.db_path}: study '{study['name']}' with {study['pairs']} pairs, "
        f"{study['votes']} example votes"
    )
    _print("Open one of these personal links:")
    for name, link in links.items():
        _print(f"  {name:14} {link}")
    if not args.no_serve:
        _serve(args, settings, store)


# ---- entry point ----


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="review-app",
        description="Blind human review, LLM-judge calibration and the final human gate.",
    )
    parser.add_argument("--db", help="workspace file (default: $REVIEW_APP_DB, else ./review.db)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_workspace_commands(sub)
    add_import_commands(sub)
    add_study_commands(sub)
    add_reviewer_commands(sub)
    add_serve_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        store = (
            None if getattr(args, "needs_store", True) is False else services.open_store(settings)
        )
        try:
            args.handler(args, settings, store)
        finally:
            if store is not None:
                store.close()
    except ReviewAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
