"""`review-app`: a thin command line over `services`. Every error the app knows about becomes one
line on stderr and exit status 1; argument mistakes exit 2 (argparse)."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

# Imported here: only what parsing a command line and `serve` need. Every other module is
# imported by the command that uses it, when it runs: the services, statistics and reports bring
# in SciPy and more, half a second of CPU that `serve` would spend before it starts the app's
# server (whose own process imports what it needs), and that every other command would spend
# on modules it does not use.
from review_app import links, server
from review_app.errors import Forbidden, InputError, NotFound, ReviewAppError
from review_app.services import import_recovery, workspace
from review_app.settings import Settings, documented_settings, shown_location
from review_app.store.connection import driver_errors

if TYPE_CHECKING:
    from review_app.auth import Actor
    from review_app.services.context import StudyContext

T = TypeVar("T")

# The choices and defaults the parser offers, copied from the modules named beside them (a test
# checks each copy against its source), so that building the parser imports none of them.
_SPLITS = ("all", "dev", "test")  # services.study_data.SPLITS
_EXPORTS = ("votes", "verdicts", "pairs", "preferences")  # services.data.EXPORTS
_DATASET_FORMATS = ("parquet", "hf")  # services.datasets.DATASET_FORMATS
_DEFAULT_TEST_SHARE = 0.3  # services.rubric_iteration.DEFAULT_TEST_SHARE
_REPORT_FORMATS = ("md", "html", "json")  # report.REPORT_FORMATS
_COMPARATORS = (">=", ">", "<=", "<")  # gate.COMPARATORS
_METRICS = (  # gate.METRICS, in its order
    "human_win_rate",
    "human_win_rate_ci_low",
    "judge_win_rate",
    "human_lc_win_rate",
    "judge_lc_win_rate",
    "judge_agreement",
    "judge_agreement_strict",
    "judge_decisive_share",
    "judge_agreement_vs_ceiling",
    "judge_beats_baseline",
    "judge_consistency",
    "judge_position_bias",
    "judge_verbosity_gap",
    "max_regression_points",
    "final_review_acceptable_rate",
    "grader_pass_rate",
    "grader_pass_rate_change",
)


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


def _share(text: str) -> float:
    """A share in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a share between 0 and 1, got {text!r}"
        ) from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a share must be in (0, 1], got {text}")
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
        settings = replace(settings, db=args.db)
    return settings


def _print(text: str = "") -> None:
    print(text, flush=True)


def _actor(args, settings, store) -> Actor | None:
    """Who the command acts as: the holder of `--token` (or REVIEW_APP_TOKEN), authenticated
    here once; None without a token, which only reads may do (the use case refuses a change)."""
    from review_app.services import people

    token = args.token or settings.token
    return people.actor_for(store, token) if token else None


def _acting(args, settings, store) -> Actor:
    """The command's actor, for a command that records something in their name."""
    actor = _actor(args, settings, store)
    if actor is None:
        raise Forbidden(
            "this command acts in your name: pass --token TOKEN (the end of your personal "
            "link) or set REVIEW_APP_TOKEN"
        )
    return actor


def _study(args, settings, store, name: str | None = None, acting: bool = True) -> StudyContext:
    """The study the command works on (`--study`, or `name`), with its actor: required when the
    command records something (`acting`), else whoever the token names, if anyone."""
    from review_app.services import context

    actor = _acting(args, settings, store) if acting else _actor(args, settings, store)
    return context.open_study(store, settings, name or args.study, actor)


# ---- workspace ----


def add_workspace_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise the workspace: eval sets, systems, studies")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_info, read_only=True)

    p = sub.add_parser(
        "copy",
        help="copy a whole workspace into an empty one, between SQLite and PostgreSQL, and prove it",
    )
    p.add_argument("--from", dest="source", required=True, help="the workspace: file or URL")
    p.add_argument("--to", dest="target", required=True, help="an empty or new file or URL")
    p.set_defaults(handler=_copy, needs_store=False)

    p = sub.add_parser("settings", help="list every setting, its environment variable and value")
    p.set_defaults(handler=_settings_cmd, needs_store=False)


def _copy(args, settings, store) -> None:
    from review_app.services import workspace_copy

    proof = workspace_copy.copy_workspace(args.source, args.target, settings)
    total = sum(proof.rows.values())
    _print(f"copied {total} rows of {len(proof.rows)} tables from {proof.source} to {proof.target}")
    for name in ("votes", "verdicts", "audit_log"):
        _print(
            f"  {name}: {proof.rows.get(name, 0)} rows, digest {proof.digests[name][:16]} on both"
        )
    studies = ", ".join(proof.verified) or "no study"
    _print(f"audit verify on the copy finds what it finds on the source ({studies})")


def _info(args, settings, store) -> None:
    summary = workspace.workspace_summary(store)
    if args.json:
        _print(json.dumps(summary, indent=2))
        return
    _print(f"workspace: {shown_location(settings.db)}")
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
        k.add_argument(
            "--reason",
            default="",
            help="why, when the study's thresholds are locked (an admin's --token is needed; "
            "the import is listed as a deviation in the report)",
        )
        k.set_defaults(handler=handler)

    p = sub.add_parser(
        "export",
        help="export votes, verdicts, pairs or preference pairs (DPO) of a study, or all of them "
        "as a dataset folder (Parquet or Hugging Face datasets)",
    )
    p.add_argument("what", choices=(*_EXPORTS, "dataset"))
    p.add_argument("--study", required=True)
    p.add_argument(
        "--format",
        choices=("csv", "jsonl", *_DATASET_FORMATS),
        help="csv (the default) or jsonl; export dataset: parquet or hf",
    )
    p.add_argument(
        "--source",
        help="preferences only: whose outcomes make the pairs, humans (their majority; the "
        "default) or a judge label",
    )
    p.add_argument("--output", help="file to write (default: standard output)")
    p.add_argument("--out", metavar="DIR", help="export dataset: the new or empty folder to write")
    p.set_defaults(handler=_export, read_only=True)


def _import_outputs(args, settings, store) -> None:
    from review_app.services import data

    _recover_imports(store)
    actor = _acting(args, settings, store)
    _print(data.import_outputs(store, args.file, args.eval_set, args.replace, actor=actor).line())


def _recover_imports(store) -> None:
    """First finish (or discard) any import whose process died, saying so."""
    for line in import_recovery.recover_imports(store):
        _print(line)


def _import_into_study(importer, args, settings, store):
    """Votes and verdicts go into a study, which the import creates when `--eval-set` is given."""
    _recover_imports(store)
    actor = _acting(args, settings, store)
    try:
        return importer(
            store,
            args.file,
            args.study,
            args.eval_set,
            args.candidate,
            actor=actor,
            reason=args.reason,
        )
    except NotFound as exc:
        from review_app.services import studies

        known = {row["name"] for row in studies.list_studies(store)}
        if args.eval_set is None and args.study not in known:
            raise NotFound(
                f"no study named {args.study!r}; pass --eval-set NAME to create it over that "
                "eval set"
            ) from exc
        raise


def _import_votes(args, settings, store) -> None:
    from review_app.services import data

    _print(_import_into_study(data.import_votes, args, settings, store).line())


def _import_verdicts(args, settings, store) -> None:
    from review_app.services import data

    _print(_import_into_study(data.import_verdicts, args, settings, store).line())


def _export(args, settings, store) -> None:
    from review_app.importers import export_rows
    from review_app.services import data

    if args.what == "dataset":
        return _export_dataset(args, settings, store)
    if args.out is not None:
        raise InputError(f"--out is for export dataset; export {args.what} writes --output FILE")
    if args.format in _DATASET_FORMATS:
        raise InputError(
            f"--format {args.format} is for export dataset; export {args.what} writes csv or jsonl"
        )
    args.format = args.format or "csv"
    columns = data.EXPORT_COLUMNS[args.what]
    options = {}
    if args.what == "preferences":
        options = {"source": args.source or "humans", "settings": settings}
    elif args.source is not None:
        raise InputError("--source applies to export preferences only")

    def write(handle) -> int:
        rows = data.export_rows(store, args.what, args.study, **options)
        return export_rows(rows, args.format, handle, columns)

    if args.output:
        n = _write_output(args.output, settings, write)
        print(f"wrote {n} {args.what} to {args.output}", file=sys.stderr)
    else:
        write(sys.stdout)


def _export_dataset(args, settings, store) -> None:
    for option in ("source", "output"):
        if getattr(args, option) is not None:
            raise InputError(f"--{option} does not apply to export dataset (it writes --out DIR)")
    if args.format is None:
        raise InputError("--format: export dataset writes parquet or hf; name one")
    if args.out is None:
        raise InputError("--out: name the new or empty folder to write the dataset to")
    from review_app.services import datasets

    ctx = _study(args, settings, store, acting=False)
    print(datasets.export_dataset(ctx, args.format, args.out).line(), file=sys.stderr)


def _write_output(name: str, settings: Settings, write: Callable[[IO[str]], T]) -> T:
    """Write the file named by --output through `write`, returning what it returns. Never the
    workspace's own files; written beside the target and renamed into place, so a failure (or
    Ctrl-C) leaves whatever was there before untouched."""
    target = Path(name)
    _refuse_workspace_files(target, settings)
    _refuse_special_files(target)
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


def _refuse_special_files(target: Path) -> None:
    """Only a regular file or a new path may be replaced: renaming over a symlink, a FIFO or a
    device node would silently swap something else (another file's link, a pipe a process
    reads, a device) for the export."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"--output {target}: cannot check it ({exc.strerror or exc})") from exc
    if stat.S_ISLNK(mode):
        kind = "a symbolic link"
    elif stat.S_ISREG(mode):
        return
    elif stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device node"
    else:
        kind = "not a regular file"
    raise InputError(f"--output {target} is {kind}; name a regular file or a new path")


def _refuse_workspace_files(target: Path, settings: Settings) -> None:
    if settings.db_is_server:
        return
    db = Path(settings.db).resolve()
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
    c.add_argument(
        "--guidelines", metavar="FILE.md", help="Markdown guidelines reviewers see beside each pair"
    )
    c.add_argument(
        "--human-share",
        type=_share,
        metavar="F",
        help="send a seeded random share F of each comparison's items to reviewers (stratified "
        "by category); the rest are judged only (default 1: every item)",
    )
    c.set_defaults(handler=_study_create)
    cand = actions.add_parser(
        "candidate", help="name the system a study decides on (before the lock)"
    )
    cand.add_argument("name")
    cand.add_argument("system")
    cand.set_defaults(handler=_study_candidate)
    ls = actions.add_parser("list", help="list studies")
    ls.set_defaults(handler=_study_list, read_only=True)
    ar = actions.add_parser(
        "archive",
        help="hide a study; unfreezes its eval set when nothing was recorded on it",
    )
    ar.add_argument("name")
    ar.set_defaults(handler=_study_archive)
    g = actions.add_parser("guidelines", help="put new reviewer guidelines in force for a study")
    g.add_argument("name")
    g.add_argument("file", metavar="FILE.md")
    g.set_defaults(handler=_study_guidelines)
    pl = actions.add_parser(
        "plan", help="change what a study collects before the lock (see `review-app plan`)"
    )
    pl.add_argument("name")
    pl.add_argument("--reviews-per-pair", type=_integer, metavar="K", help="votes per comparison")
    pl.add_argument(
        "--final-review", type=_integer, metavar="N", help="outputs in the signer's final review"
    )
    pl.add_argument(
        "--human-share",
        type=_share,
        metavar="F",
        help="the share of each comparison's items reviewers see (a new seeded draw)",
    )
    pl.set_defaults(handler=_study_plan)


def _study_create(args, settings, store) -> None:
    from review_app.services import studies

    comparisons = [studies.parse_comparison(c) for c in args.compare]
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    guidelines = studies.read_guidelines_file(args.guidelines) if args.guidelines else None
    summary = studies.create_study(
        store,
        args.name,
        args.eval_set,
        comparisons,
        args.reviews_per_pair,
        args.show_reference,
        criteria,
        candidate=args.candidate,
        actor=_acting(args, settings, store),
        guidelines=guidelines,
        human_share=args.human_share,
    )
    skipped = "; ".join(
        f"{c}: {n} items lack an output" for c, n in summary.skipped_items.items() if n
    )
    _print(
        f"study {summary.name}: {summary.pairs_added} pairs over eval set {summary.eval_set} "
        f"(frozen, hash {summary.eval_set_hash[:12]}); candidate {summary.candidate}"
        + (f"; {skipped}" if skipped else "")
        + (
            f"; reviewers see {summary.human_pairs} of them (human share {args.human_share:g}), "
            "the rest are judged only"
            if args.human_share is not None and args.human_share < 1
            else ""
        )
    )


def _study_archive(args, settings, store) -> None:
    from review_app.services import studies

    archived = studies.archive_study(_study(args, settings, store, args.name))
    _print(
        f"study {archived.name}: archived; eval set {archived.eval_set} "
        + (
            "unfrozen (nothing was recorded on it)"
            if archived.unfrozen
            else "stays frozen (votes, verdicts or a lock refer to it)"
        )
    )


def _study_candidate(args, settings, store) -> None:
    from review_app.services import studies

    studies.set_candidate(_study(args, settings, store, args.name), args.system)
    _print(f"study {args.name}: candidate {args.system}")


def _study_guidelines(args, settings, store) -> None:
    from review_app.services import studies

    text = studies.read_guidelines_file(args.file)
    digest, changed = studies.set_guidelines(_study(args, settings, store, args.name), text)
    if changed:
        _print(f"guidelines {digest} in force for study {args.name}; new votes record this hash")
    else:
        _print(f"guidelines {digest} were already in force for study {args.name}; nothing changed")


def _study_plan(args, settings, store) -> None:
    from review_app.services import plans

    ctx = _study(args, settings, store, args.name)
    _print(plans.change_plan(ctx, args.reviews_per_pair, args.final_review, args.human_share))


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
    a.add_argument(
        "--reissue",
        action="store_true",
        help="replace the link (or role) of someone who already has one (logged)",
    )
    a.set_defaults(handler=_reviewers_add)
    ls = actions.add_parser("list", help="list reviewers")
    ls.set_defaults(handler=_reviewers_list, read_only=True)
    r = actions.add_parser("revoke", help="revoke a reviewer's link")
    r.add_argument("name")
    r.set_defaults(handler=_reviewers_revoke)
    st = actions.add_parser("stats", help="reviewer quality in a study, with flags")
    st.add_argument("--study", required=True)
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(handler=_reviewers_stats, read_only=True)
    for action, helptext, handler in (
        ("exclude", "leave a reviewer's votes out of a study's statistics", _reviewers_exclude),
        ("include", "count an excluded reviewer's votes again", _reviewers_include),
    ):
        e = actions.add_parser(action, help=helptext)
        e.add_argument("name")
        e.add_argument("--study", required=True)
        e.add_argument("--reason", required=True, help="why (recorded, and shown in the report)")
        e.set_defaults(handler=handler)

    k = sub.add_parser("known-answers", help="comparisons with a known correct answer")
    known = k.add_subparsers(dest="action", required=True)
    ks = known.add_parser("set", help="mark a comparison with its known correct answer")
    ks.add_argument("--study", required=True)
    ks.add_argument("--item", required=True, metavar="ITEM_ID")
    ks.add_argument("--compare", required=True, metavar="SYS:SYS")
    ks.add_argument("--answer", required=True, help="one of the two systems, tie or both_bad")
    ks.set_defaults(handler=_known_set)
    kr = known.add_parser("remove", help="remove a comparison's known answer")
    kr.add_argument("--study", required=True)
    kr.add_argument("--item", required=True, metavar="ITEM_ID")
    kr.add_argument("--compare", required=True, metavar="SYS:SYS")
    kr.set_defaults(handler=_known_remove)
    kl = known.add_parser("list", help="list a study's known answers")
    kl.add_argument("--study", required=True)
    kl.set_defaults(handler=_known_list, read_only=True)


def _reviewers_add(args, settings, store) -> None:
    from review_app.services import people

    # The very first admin link of a workspace is made without one (that admin is recorded as
    # adding themselves); every later change is made by an admin, in their name.
    first_admin = args.role == "admin" and not people.has_admin(store)
    actor = None if first_admin else _acting(args, settings, store)
    reviewer, link = people.add_reviewer(
        store, settings, args.name, args.role, args.study, actor=actor, reissue=args.reissue
    )
    _print(links.link_base(settings).note())
    _print(f"{reviewer['name']} ({reviewer['role']}): send them this personal link")
    _print(link)


def _reviewers_list(args, settings, store) -> None:
    from review_app.services import people

    for r in people.list_reviewers(store):
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        _print(
            f"{r['name']}\t{r['role']}\t{r['study'] or '-'}\t{r['n_votes']} pairs voted\t{state}"
        )


def _reviewers_revoke(args, settings, store) -> None:
    from review_app.services import people

    people.revoke_reviewer(store, args.name, _acting(args, settings, store))
    _print(f"revoked {args.name}")


def _rate(estimate) -> str:
    return "-" if estimate.value is None else f"{estimate.value:.2f} (n={estimate.n})"


def _reviewers_stats(args, settings, store) -> None:
    from review_app.services import quality
    from review_app.stats_text import fmt_estimate as _fmt_estimate
    from review_app.stats_text import text_table as _table

    report = quality.reviewer_report(store, args.study, settings, _actor(args, settings, store))
    if args.json:
        _print(json.dumps(report.document(), indent=2))
        return
    ceiling = report.ceiling
    _print(
        f"study {args.study}: human agreement without ties "
        f"{_fmt_estimate(ceiling.to_json(with_ci=False))} (excluded reviewers left out)"
    )
    rows = []
    for r in report.reviewers:
        seconds = "-" if r.median_seconds is None else f"{r.median_seconds:.0f}"
        rows.append(
            [
                r.reviewer + (" (excluded)" if r.excluded else ""),
                str(r.n_votes),
                seconds,
                _fmt_estimate(r.agreement.to_json()),
                _rate(r.p_left),
                _rate(r.recognized_rate),
                _rate(r.both_bad_rate),
                _rate(r.known_answer_accuracy),
                _fmt_estimate(report.ceiling_without[r.reviewer].to_json(with_ci=False)),
            ]
        )
    headers = [
        "reviewer",
        "votes",
        "median s",
        "agreement with majority",
        "p_left",
        "knows model",
        "both bad",
        "known answers",
        "ceiling without them",
    ]
    for line in _table(headers, rows):
        _print(line)
    for r in report.reviewers:
        for flag in r.flags:
            _print(f"flag: {r.reviewer}: {flag}")


def _reviewers_exclude(args, settings, store) -> None:
    from review_app.services import quality

    quality.exclude_reviewer(_study(args, settings, store), args.name, args.reason)
    _print(f"{args.name} excluded from study {args.study}; its statistics now leave them out")


def _reviewers_include(args, settings, store) -> None:
    from review_app.services import quality

    quality.include_reviewer(_study(args, settings, store), args.name, args.reason)
    _print(f"{args.name} counts again in study {args.study}")


def _known_set(args, settings, store) -> None:
    from review_app.services import quality

    quality.set_known_answer(_study(args, settings, store), args.item, args.compare, args.answer)
    _print(f"known answer of {args.item} ({args.compare}): {args.answer}")


def _known_remove(args, settings, store) -> None:
    from review_app.services import quality

    quality.remove_known_answer(_study(args, settings, store), args.item, args.compare)
    _print(f"known answer of {args.item} ({args.compare}) removed")


def _known_list(args, settings, store) -> None:
    from review_app.services import quality

    for row in quality.known_answers(store, args.study):
        _print(
            f"{row['item_key']}\t{row['system_x']}:{row['system_y']}\t{row['answer']}\t"
            f"set by {row['set_by'] or '-'} at {row['created_at']}"
        )


# ---- serving ----


def add_serve_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web app")
    d = sub.add_parser("demo", help="load the demo data, print links, and start the web app")
    for command in (p, d):
        command.add_argument("--host", help="address to listen on (default: $REVIEW_APP_HOST)")
        command.add_argument(
            "--port", type=_port, help="port to listen on (default: $REVIEW_APP_PORT)"
        )
        command.add_argument(
            "--public-url",
            type=_public_url,
            metavar="URL",
            help="the address reviewers open the app at, e.g. https://example.com/review/: "
            "every personal link starts with it and the app is served under its path "
            "(default: $REVIEW_APP_PUBLIC_URL)",
        )
    p.set_defaults(handler=_serve)
    d.add_argument("--no-serve", action="store_true", help="only load the demo data")
    d.set_defaults(handler=_demo)


def _public_url(text: str) -> str:
    try:
        return links.check_public_url(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _served(args, settings: Settings) -> Settings:
    """`settings` with the command's --host, --port and --public-url, where given."""
    given = {"host": args.host, "port": args.port, "public_url": args.public_url}
    return replace(settings, **{k: v for k, v in given.items() if v is not None})


def _serve(args, settings, store, on_ready=None) -> None:
    settings = _served(args, settings)
    _recover_imports(store)
    store.close()
    prefix = links.path_prefix(settings.public_url)
    address = links.server_address(settings.host, settings.port) + (f"/{prefix}" if prefix else "")
    _print(f"serving {shown_location(settings.db)} on {address} (Ctrl+C to stop)")

    def ready() -> None:
        _print(
            "The app is ready; open it with a personal link (`review-app reviewers add` prints one)."
        )
        _print(links.link_base(settings).note(option=True))

    raise SystemExit(server.run_app(settings, on_ready or ready))


def _demo(args, settings, store) -> None:
    from review_app.services import demo

    settings = _served(args, settings)
    issued = demo.seed_demo(store, settings)
    summary = workspace.workspace_summary(store)
    study = next(s for s in summary["studies"] if s["name"] == demo.DEMO_STUDY)
    in_app = study["app_votes"]
    _print(
        f"demo workspace {shown_location(settings.db)}: study '{study['name']}' with {study['pairs']} pairs, "
        f"{study['votes'] - in_app} example votes"
        + (f" and {in_app} cast in the app" if in_app else "")
    )
    _print(links.link_base(settings).note(option=True))
    _print("Personal links (each signs you in as that demo user):")
    admin = issued.pop(demo.DEMO_ADMIN)
    for name, link in issued.items():
        _print(f"  {name:14} {link}")

    def finish() -> None:
        # Last, so the end of the output is what to do next: a working link.
        _print(f"For the command line: export REVIEW_APP_DB={settings.db_location()}")
        _print(f"Open the app as {demo.DEMO_ADMIN}:")
        _print(admin)

    if args.no_serve:
        finish()
    else:
        _serve(args, settings, store, on_ready=finish)


# ---- calibration ----


def add_calibration_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats", help="calibration statistics of a study: humans, judges, baselines, categories"
    )
    p.add_argument("--study", required=True)
    p.add_argument("--json", action="store_true", help="print the documented JSON document")
    p.add_argument(
        "--split",
        choices=_SPLITS,
        help="only the dev or test comparisons of the study's split, or all of them (default: "
        "dev when the study has a split, else all; test or all on a split study: a recorded look "
        "at test)",
    )
    p.set_defaults(handler=_stats, read_only=True)

    c = sub.add_parser("calibrate", help="rubric iteration: dev/test split, compare, confirm")
    actions = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    sp = actions.add_parser(
        "split",
        help="split the human-labelled comparisons into dev and test, once",
        description="Split the study's human-labelled comparisons into dev and test (seeded, "
        "stratified by category, whole items on one side). Recorded once: a second split is "
        "refused.",
    )
    sp.add_argument("--study", required=True)
    sp.add_argument("--test-share", type=_number, default=_DEFAULT_TEST_SHARE, metavar="SHARE")
    sp.add_argument("--seed", type=_integer, metavar="N", help="seed (default $REVIEW_APP_SEED)")
    sp.set_defaults(handler=_calibrate_split)
    sh = actions.add_parser("show", help="the study's split and how often test was looked at")
    sh.add_argument("--study", required=True)
    sh.add_argument("--json", action="store_true", help="print one JSON object")
    sh.set_defaults(handler=_calibrate_show, read_only=True)
    cp = actions.add_parser(
        "compare",
        help="two judges (rubric versions) on dev: agreement, paired CI, changed verdicts",
    )
    cp.add_argument("--study", required=True)
    cp.add_argument("--judges", required=True, metavar="A,B", help="two judge labels")
    cp.add_argument(
        "--split", choices=_SPLITS, default="dev", help="default dev (test: a recorded look)"
    )
    cp.add_argument("--json", action="store_true", help="print one JSON object")
    cp.set_defaults(handler=_calibrate_compare, read_only=True)
    cf = actions.add_parser(
        "confirm", help="a judge's agreement on the held-out test comparisons (a recorded look)"
    )
    cf.add_argument("--study", required=True)
    cf.add_argument("--judge", required=True, metavar="LABEL")
    cf.add_argument("--json", action="store_true", help="print one JSON object")
    cf.set_defaults(handler=_calibrate_confirm, read_only=True)

    j = sub.add_parser(
        "jury",
        help="create a jury (a virtual judge: majority of its judges' verdicts) or list juries",
        description="With --name and --judges, store a jury over the study's judges; it "
        "appears as judge jury/NAME in statistics and can be named in thresholds. Its verdict "
        "is the unique most frequent of its members' combined verdicts, a tie when the top is "
        "shared, unparsed when half of the members or fewer answered. Without them, list the "
        "study's juries.",
    )
    j.add_argument("--study", required=True)
    j.add_argument("--name", help="the jury's name (judge label jury/NAME)")
    j.add_argument("--judges", metavar="A,B,C", help="judge labels, comma-separated")
    j.add_argument(
        "--reason", default="", help="required once the thresholds are locked (a deviation)"
    )
    j.set_defaults(handler=_jury)

    p = sub.add_parser(
        "scorecard",
        help="every system side by side: criterion means, rankings, win rates raw and "
        "length-controlled, regressions",
    )
    p.add_argument("--study", required=True)
    p.add_argument("--json", action="store_true", help="print the documented JSON document")
    p.add_argument(
        "--reference",
        metavar="SYSTEM",
        help="show the candidate as a share of this system (default: the best-rated other one)",
    )
    p.add_argument(
        "--base",
        metavar="SYSTEM",
        help="the regression table's other system (default: the one the study's regression "
        "thresholds name, else the worst-rated other one)",
    )
    p.set_defaults(handler=_scorecard, read_only=True)


def _scorecard(args, settings, store) -> None:
    from review_app import report
    from review_app.services import scorecard

    ctx = _study(args, settings, store, acting=False)
    card = scorecard.scorecard(ctx, args.reference, args.base)
    if args.json:
        _print(json.dumps(card, indent=2))
        return
    _print(f"study {card['study']}: candidate {card['candidate']}")
    _print("")
    _print("\n".join(report.scorecard_markdown(card)))


def _stats(args, settings, store) -> None:
    from review_app import stats_text
    from review_app.services import calibration, rubric_iteration

    split = args.split or rubric_iteration.default_view_split(store, args.study)
    looks = rubric_iteration.looks_at_test(store, args.study, split)
    by = _acting(args, settings, store) if looks else None
    ctx = _study(args, settings, store, acting=False)
    report = calibration.calibration_report(ctx, split, looked_by=by)
    preferences = calibration.self_preference(ctx, split)
    pointwise = calibration.pointwise_scores(ctx, split)
    count = rubric_iteration.test_look_count(store, args.study) if looks else None
    fmt = "json" if args.json else "text"
    _print(stats_text.render_stats(report, preferences, pointwise, split, fmt, test_looks=count))


def _calibrate_split(args, settings, store) -> None:
    from review_app.services import rubric_iteration

    summary = rubric_iteration.make_split(_study(args, settings, store), args.test_share, args.seed)
    _print(summary.line())


def _calibrate_show(args, settings, store) -> None:
    from review_app.services import rubric_iteration

    summary = rubric_iteration.split_summary(store, args.study)
    looks = rubric_iteration.test_look_count(store, args.study)
    if args.json:
        body = None if summary is None else {k: v for k, v in vars(summary).items()}
        _print(json.dumps({"split": body, "test_looks": looks}, indent=2))
        return
    if summary is None:
        _print(f"study {args.study} has no dev/test split (`review-app calibrate split`)")
    else:
        _print(summary.line())
        for category, counts in sorted(summary.by_category.items()):
            _print(f"  {category}: {counts['dev']} dev, {counts['test']} test")
    _print(f"test looked at {looks} times")


def _judge_pair(text: str, count: int, option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if count and len(names) != count:
        raise InputError(f"{option}: name exactly {count} judges, comma-separated; got {text!r}")
    return names


def _calibrate_compare(args, settings, store) -> None:
    from review_app.services import rubric_iteration
    from review_app.stats_text import text_table as _table

    judge_a, judge_b = _judge_pair(args.judges, 2, "--judges")
    # Test is always a recorded look; before the lock an imported judge's agreement is one too.
    by = _acting(args, settings, store) if args.split == "test" else _actor(args, settings, store)
    result = rubric_iteration.compare_versions(
        store, args.study, judge_a, judge_b, args.split, settings, by
    )
    c = result.comparison
    if args.json:
        _print(
            json.dumps(
                {
                    "split": result.split,
                    "judge_a": c.judge_a,
                    "judge_b": c.judge_b,
                    "agreement_a": c.agreement_a.to_json(),
                    "agreement_b": c.agreement_b.to_json(),
                    "difference": c.difference.to_json(),
                    "outcomes_visible": result.outcomes_visible,
                    "changed": result.changed.astype(object).to_dict("records"),
                },
                indent=2,
                default=str,
            )
        )
        return
    _print(result.line())
    if len(result.changed):
        rows = [
            [
                str(r[k])
                for k in ("item_key", "category", "verdict_a", "verdict_b", "human_majority")
            ]
            for r in result.changed.to_dict("records")
        ]
        for line in _table(["item", "category", "a", "b", "humans"], rows):
            _print(line)


def _calibrate_confirm(args, settings, store) -> None:
    from review_app.services import rubric_iteration
    from review_app.stats_text import fmt_estimate as _fmt_estimate

    judge = rubric_iteration.confirm_on_test(
        store, args.study, args.judge, _acting(args, settings, store), settings
    )
    looks = rubric_iteration.test_look_count(store, args.study)
    document = judge.to_json()
    if args.json:
        _print(json.dumps({"judge": document, "test_looks": looks}, indent=2))
        return
    _print(
        f"{args.judge} on test: agreement with ties "
        f"{_fmt_estimate(document['agreement']['with_ties'])}, without ties "
        f"{_fmt_estimate(document['agreement']['without_ties'])}, strict "
        f"{_fmt_estimate(document['agreement_strict'])}"
    )
    _print(f"test looked at {looks} times")


def _jury(args, settings, store) -> None:
    from review_app.services import juries

    if args.name is None and args.judges is None:
        for jury in juries.list_juries(store, args.study):
            _print(f"{jury['label']}\t{', '.join(jury['members'])}\t{jury['created_at']}")
        return
    if not args.name or not args.judges:
        raise InputError("a jury needs both --name and --judges")
    jury = juries.create_jury(
        _study(args, settings, store),
        args.name,
        _judge_pair(args.judges, 0, "--judges"),
        reason=args.reason,
    )
    _print(f"jury {jury['label']}: {', '.join(jury['members'])}")


# ---- gate ----


def add_gate_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("thresholds", help="pre-register, list and lock a study's gate thresholds")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="add a threshold (after the lock: a recorded deviation)")
    a.add_argument("--study", required=True)
    a.add_argument("--metric", required=True, choices=list(_METRICS))
    a.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="metric parameter, e.g. system_a=finetuned (repeatable); judge_agreement needs "
        "ties=with|without|strict (no default)",
    )
    a.add_argument("--comparator", choices=_COMPARATORS, help="default: the metric's usual one")
    a.add_argument("--value", required=True, type=_number)
    a.add_argument("--reason", default="", help="required once the thresholds are locked")
    a.set_defaults(handler=_thresholds_add)
    ls = actions.add_parser("list", help="list thresholds and the lock")
    ls.add_argument("--study", required=True)
    ls.set_defaults(handler=_thresholds_list, read_only=True)
    lk = actions.add_parser("lock", help="lock the thresholds before looking at results")
    lk.add_argument("--study", required=True)
    lk.add_argument(
        "--reason",
        default="",
        help="why a design with under 50%% power to pass is locked anyway (recorded)",
    )
    lk.set_defaults(handler=_thresholds_lock)
    rm = actions.add_parser("remove", help="remove a threshold by id")
    rm.add_argument("id", type=_integer)
    rm.add_argument("--study", required=True)
    rm.add_argument("--reason", default="")
    rm.set_defaults(handler=_thresholds_remove)

    r = sub.add_parser("report", help="export the sign-off report")
    r.add_argument("--study", required=True)
    r.add_argument("--format", choices=_REPORT_FORMATS, default="md")
    r.add_argument("--output", help="file to write (default: standard output)")
    r.set_defaults(handler=_report, read_only=True)

    s = sub.add_parser("signoff", help="approve or reject the study as a signer")
    s.add_argument("--study", required=True)
    s.add_argument(
        "--signer", help="your name, checked against the signer --token (the token decides)"
    )
    s.add_argument("--decision", required=True, choices=("approve", "reject"))
    s.add_argument("--comment", required=True)
    s.add_argument(
        "--override",
        default="",
        metavar="REASON",
        help="approve although the gate did not pass or the final review is incomplete (recorded "
        "and shown in the report)",
    )
    s.add_argument(
        "--report",
        metavar="FILE",
        help="the JSON report you read: nothing is signed when the report now differs from it",
    )
    s.set_defaults(handler=_signoff)

    au = sub.add_parser("audit", help="check and read the record of a study")
    audit_actions = au.add_subparsers(dest="action", required=True)
    v = audit_actions.add_parser(
        "verify", help="recompute the audit chain, lock, sign-offs, vote digests and triggers"
    )
    v.add_argument("--study", required=True)
    v.add_argument("--report", metavar="FILE", help="also check a JSON report and its signature")
    v.add_argument(
        "--anchor",
        metavar="ANCHOR",
        help="also check that the log still reaches an anchor (a file, or the text itself)",
    )
    v.set_defaults(handler=_audit_verify, read_only=True)
    an = audit_actions.add_parser(
        "anchor", help="print the audit log's head with its keyed signature, to keep elsewhere"
    )
    an.add_argument("--study", required=True)
    an.set_defaults(handler=_audit_anchor, read_only=True)
    lg = audit_actions.add_parser("log", help="the study's governance actions, oldest first")
    lg.add_argument("--study", required=True)
    lg.set_defaults(handler=_audit_log)

    pl = sub.add_parser(
        "plan",
        help="the chance that every threshold passes at the expected truth, now and with the "
        "smallest design that reaches 80%%",
    )
    pl.add_argument("--study", required=True)
    pl.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="the truth to plan for, per metric (repeatable; default: each superiority bar + "
        "0.05, non-inferiority margins at parity, final review 0.97 acceptable)",
    )
    pl.add_argument(
        "--judge",
        metavar="NAME",
        help="also plan prediction-powered estimates with this judge (default: the judge the "
        "study's thresholds name, if any)",
    )
    pl.add_argument("--json", action="store_true", help="print one JSON object")
    pl.set_defaults(handler=_plan, read_only=True)


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param {pair!r}: expected NAME=VALUE")
        params[name.strip()] = value.strip()
    return params


def _thresholds_add(args, settings, store) -> None:
    from review_app.services import thresholds

    new_id = thresholds.add_threshold(
        _study(args, settings, store),
        args.metric,
        _params(args.param),
        args.comparator,
        args.value,
        args.reason,
    )
    _print(f"threshold {new_id} added")


def _thresholds_list(args, settings, store) -> None:
    from review_app.services import thresholds

    ctx = _study(args, settings, store, acting=False)
    lock = ctx.lock.row
    for t in thresholds.list_thresholds(ctx):
        _print(f"{t['id']}\t{t['description']}")
    if lock:
        _print(
            f"locked by {lock['locked_by']} at {lock['locked_at']} (hash {lock['content_hash']})"
        )
    else:
        _print("not locked: outcome numbers stay hidden until the thresholds are locked")


def _thresholds_lock(args, settings, store) -> None:
    from review_app.services import thresholds

    content_hash = thresholds.lock_thresholds(_study(args, settings, store), args.reason)
    _print(f"locked; thresholds hash {content_hash}")


def _thresholds_remove(args, settings, store) -> None:
    from review_app.services import thresholds

    thresholds.remove_threshold(_study(args, settings, store), args.id, args.reason)
    _print(f"threshold {args.id} removed")


def _report(args, settings, store) -> None:
    from review_app import report
    from review_app.services import signoff

    def text() -> str:
        ctx = _study(args, settings, store, acting=False)
        return report.render_report(signoff.build_report(ctx), args.format)

    if args.output:
        _write_output(args.output, settings, lambda handle: handle.write(text()))
        print(f"wrote the {args.format} report to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text())


def _signoff(args, settings, store) -> None:
    from review_app.services import signoff

    signer = _acting(args, settings, store)
    if args.signer and args.signer != signer.name:
        raise Forbidden(f"this token is {signer.name}'s, not {args.signer}'s")
    seen = None
    if args.report:
        try:
            seen = json.loads(Path(args.report).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{args.report}: not a JSON report ({exc})") from None
        if not isinstance(seen, dict):
            raise InputError(f"{args.report}: not a JSON report")
    report = signoff.sign_off(
        store,
        args.study,
        signer,
        args.decision,
        args.comment,
        settings,
        override=args.override,
        seen=seen,
    )
    last = report["signoffs"][-1]
    override = f"; override of a {last['gate_result']} gate recorded" if last["override"] else ""
    _print(
        f"{last['decision']} recorded for study {args.study} (report hash "
        f"{last['report_hash']}){override}"
    )


def _audit_verify(args, settings, store) -> None:
    from review_app.services import audit

    anchored = audit.read_anchor(args.anchor) if args.anchor else None
    problems = audit.verify(store, args.study, settings, args.report, anchored)
    if problems:
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        raise ReviewAppError(f"the record of study {args.study} does not hold ({len(problems)})")
    checked = " and the report's signature" if args.report else ""
    checked += " and the anchor" if args.anchor else ""
    _print(f"study {args.study}: audit chain, lock, sign-offs, votes and triggers hold{checked}")


def _audit_anchor(args, settings, store) -> None:
    from review_app.services import audit

    _print(json.dumps(audit.anchor(store, args.study, settings), sort_keys=True))


def _audit_log(args, settings, store) -> None:
    from review_app.services import audit

    for entry in audit.study_log(store, args.study):
        detail = json.dumps(entry["detail"], sort_keys=True)
        _print(f"{entry['at']}\t{entry['actor']}\t{entry['action']}\t{detail}")


def _plan(args, settings, store) -> None:
    from review_app import planning
    from review_app.services import plans

    ctx = _study(args, settings, store, acting=False)
    proposal = plans.plan_study(ctx, planning.parse_expectations(args.expect), args.judge)
    if args.json:
        _print(json.dumps(proposal.to_json(), indent=2))
        return
    for line in proposal.lines():
        _print(line)


# ---- judge ----


def add_judge_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a study's pairs with an LLM or baseline judge (resumes an earlier run)",
        description="Judge every pair of a study, in both orders unless --single-order. Only "
        "calls the run does not hold yet are sent, so re-running the same command resumes. "
        "--batch sends them through the provider's batch API instead: half the price, answers "
        "within 24 hours; re-running resumes the same batches and never sends a call twice.",
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
    p.add_argument(
        "--batch",
        action="store_true",
        help="send the calls through the provider's batch API (openai/, anthropic/): cheaper, "
        "slower; waits for the answers unless --no-wait",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="with --batch: send and look once, then return; run the same command to collect",
    )
    p.add_argument(
        "--split",
        choices=_SPLITS,
        default="all",
        help="judge only the dev or test comparisons of the study's split",
    )
    p.add_argument(
        "--reason",
        default="",
        help="required once the thresholds are locked: the run is recorded as a deviation",
    )
    p.set_defaults(handler=_judge)

    r = sub.add_parser("judge-runs", help="list a study's judge runs with their totals")
    r.add_argument("--study", required=True)
    r.add_argument(
        "--failures", type=_integer, metavar="RUN_ID", help="show a run's unparsed answers"
    )
    r.add_argument(
        "--cancel",
        type=_integer,
        metavar="RUN_ID",
        help="cancel a run's provider batches; answers they already hold are stored",
    )
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(handler=_judge_runs, read_only=True)


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


class _BatchProgressLine:
    """Each batch's state and counts on stderr: a line whenever they change, and every few
    minutes while a batch waits at the provider, so a long wait never looks like a hang."""

    QUIET_S = 300.0

    def __init__(self) -> None:
        self.last = ""
        self.printed_at = 0.0

    def __call__(self, progress) -> None:
        line = progress.line()
        # The elapsed time (the last field) changing alone is no news.
        news = line.rsplit(";", 1)[0] != self.last.rsplit(";", 1)[0]
        if news or progress.elapsed_s - self.printed_at >= self.QUIET_S:
            print(line, file=sys.stderr, flush=True)
            self.printed_at = progress.elapsed_s
        self.last = line


def _judge(args, settings, store) -> None:
    from review_app.services import judging

    both_orders = not args.single_order
    if args.no_wait and not args.batch:
        raise ReviewAppError("--no-wait only applies with --batch")
    plan = judging.plan_judge_run(
        store,
        settings,
        args.study,
        args.rubric,
        args.judge,
        both_orders,
        args.seed,
        args.batch,
        split=args.split,
    )
    if args.dry_run:
        _print(plan.line())
        # The plan is shown either way; the status says whether the run itself would start.
        judging.check_run(_study(args, settings, store, acting=False), plan, args.reason)
        return
    if args.batch:
        _judge_batch(args, settings, store, both_orders)
        return
    outcome = judging.start_judge_run(
        _study(args, settings, store),
        args.rubric,
        args.judge,
        both_orders=both_orders,
        seed=args.seed,
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        on_progress=_ProgressBar(),
        on_start=lambda plan: print(plan.line(), file=sys.stderr, flush=True),
        split=args.split,
        reason=args.reason,
    )
    _print(outcome.line())
    if outcome.failures:
        for failure in outcome.failures[:10]:
            print(f"failed: {failure}", file=sys.stderr)
        raise ReviewAppError(
            f"{len(outcome.failures)} calls failed after retries and were not stored; "
            "run the same command again to send only those"
        )


def _judge_batch(args, settings, store, both_orders: bool) -> None:
    from review_app.services import judging

    outcome = judging.start_batch_run(
        _study(args, settings, store),
        args.rubric,
        args.judge,
        both_orders=both_orders,
        seed=args.seed,
        wait=not args.no_wait,
        on_progress=_BatchProgressLine(),
        on_start=lambda plan: print(plan.line(), file=sys.stderr, flush=True),
        split=args.split,
        reason=args.reason,
    )
    _print(outcome.line())
    if outcome.status == "batched":
        _print("the provider is still working: run the same command again to collect the answers")
    for failure in outcome.failures[:10]:
        print(f"no answer: {failure}", file=sys.stderr)
    if outcome.failures:
        raise ReviewAppError(
            f"{outcome.progress.failed + len(outcome.progress.not_sent)} calls came back without "
            "an answer and were not stored; run the same command again to send only those"
        )


def _judge_runs(args, settings, store) -> None:
    from review_app.services import judging

    if args.cancel is not None:
        outcome = judging.cancel_batch_run(store, settings, args.cancel)
        _print(outcome.progress.line())
        _print(outcome.line())
        return
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
        if run["open_batches"]:
            missing += f", {run['in_batches']} in {run['open_batches']} open batches"
        _print(
            f"{run['id']}\t{run['label']}\t{run['status']}\t{run['verdicts']} verdicts "
            f"({run['unparsed']} unparsed{missing})\t{cost}"
        )


# ---- graders ----


def add_grade_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="run a grader file's checks on every output of a study")
    p.add_argument("--study", required=True)
    p.add_argument("--grader", required=True, metavar="FILE", help="grader YAML (see graders/)")
    p.add_argument(
        "--reason",
        default="",
        help="why, when the study's thresholds are locked and did not pin this grader version "
        "(an admin's --token is needed; the report lists it as a deviation)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_grade)


def _grade(args, settings, store) -> None:
    from review_app import report
    from review_app.services import grading

    ctx = _study(args, settings, store)
    outcome = grading.grade(ctx, args.grader, args.reason)
    summary = grading.grader_summary(ctx) if ctx.lock.visible else None
    if args.json:
        document = {
            "study": outcome.study,
            "grader": outcome.grader,
            "content_hash": outcome.content_hash,
            "outputs": outcome.outputs,
            "checks": outcome.checks,
            "results": outcome.results,
            "new": outcome.new,
            "deviation": outcome.deviation,
            "outcomes_hidden": summary is None,
            **(summary or {}),
        }
        _print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    _print(outcome.line())
    if summary is None:
        _print("pass rates stay hidden until the study's thresholds are locked (the lock pins it)")
        return
    _print("grader\tcheck\tsystem\tcategory\tpassed\tpass rate\t95% CI")
    for r in summary["graders"]:
        _print(
            f"{r['grader']}\t{r['check']}\t{r['system']}\t{r['category'] or 'all'}\t"
            f"{r['passed']}/{r['n']}\t{r['rate']:.3f}\t{report.format_ci(r['ci'], digits=3)}"
        )
    for r in summary["choice"]:
        _print(
            f"{r['grader']}\t{r['check']}\t{r['system']}: accuracy {r['accuracy']:.3f}, "
            f"macro-F1 {r['macro_f1']:.3f} over {len(r['labels'])} labels (n={r['n']})"
        )


# ---- entry point ----


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: built once per process (about 60 ms), since parsing leaves it
    unchanged and nothing in it depends on the environment (settings are read when a command
    runs)."""
    parser = _Parser(
        prog="review-app",
        description="Blind human review, LLM-judge calibration and the final human gate.",
    )
    parser.add_argument("--db", help="workspace file (default: $REVIEW_APP_DB, else ./review.db)")
    parser.add_argument(
        "--token",
        help="your personal token, the end of your link (default: $REVIEW_APP_TOKEN): commands "
        "that change the record act as you",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_workspace_commands(sub)
    add_import_commands(sub)
    add_study_commands(sub)
    add_reviewer_commands(sub)
    add_gate_commands(sub)
    add_serve_commands(sub)
    add_calibration_commands(sub)
    add_judge_commands(sub)
    add_grade_commands(sub)
    _accept_everywhere(parser, ("--db", "--token"))
    return parser


def _accept_everywhere(parser: argparse.ArgumentParser, options: tuple[str, ...]) -> None:
    """Let every command take `options` after its name too (`review-app info --db X`), as
    people type them. A command's copy has no default, so it never hides a value given
    before the command name."""
    originals = [a for a in parser._actions if set(a.option_strings) & set(options)]

    def add_below(node: argparse.ArgumentParser) -> None:
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in set(action.choices.values()):
                    for original in originals:
                        if original.option_strings[0] not in child._option_string_actions:
                            child.add_argument(
                                *original.option_strings,
                                dest=original.dest,
                                help=original.help,
                                default=argparse.SUPPRESS,
                            )
                    add_below(child)

    add_below(parser)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unencodable = _unencodable(args)
    if unencodable:
        parser.error(f"argument {unencodable.replace('_', '-')}: not valid UTF-8 text")
    try:
        settings = _settings(args)
        if getattr(args, "needs_store", True) is False:
            store = None
        elif getattr(args, "read_only", False) or getattr(args, "dry_run", False):
            # Reading must never leave an empty workspace behind (a mistyped --db would).
            store = workspace.open_existing_store(settings)
        else:
            store = workspace.open_store(settings)
        try:
            args.handler(args, settings, store)
        finally:
            if store is not None:
                store.close()
    except ReviewAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Transactions roll back when interrupted. An import commits only once every row has
        # passed its checks, and a judge run commits each verdict as it lands.
        print(
            "error: interrupted; what was not yet committed was rolled back (an import whose "
            "rows had all passed is finished by the next import or server start)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # The reader went away (`review-app export ... | head`): that is not an error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, *driver_errors()) as exc:
        # A file that cannot be written or a --db that is not a workspace: one line, not a trace.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
