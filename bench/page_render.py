"""Page render time and store queries: calibration, results and gate screens and the sign-off report.

What: a workspace with one study of 20,000 comparisons (10,000 items answered by base, finetuned
and frontier; finetuned vs base and finetuned vs frontier), 60,000 human votes (3 of 30 reviewers
per pair, counterbalanced left/right), 40,000 verdicts of one imported LLM judge (both orders of
every pair, ~1% unparsed, with position and verbosity bias) and the baseline judges the app
computes itself. Ten thresholds of every metric kind are added and locked, so results, the gate
evaluation and the report are all visible.

How:
- The workspace is built only through the command line contract (`review_app.cli.main`: import
  outputs, study create, import votes, import verdicts, reviewers add, thresholds add/lock) from
  JSONL files generated deterministically (fixed seed) in a temp dir; generation and import are
  timed separately (`generate_s`, `import_s`).
- Each page (`review_app/app_pages/{calibration,results,gate}.py`, found beside the imported
  `review_app` package) is rendered with `streamlit.testing.v1.AppTest` as a signed-in admin (only
  the `?token=` of the personal link is preset), in a fresh Python process per page, so no cache
  of an earlier page or of the setup helps. Before the timed renders the process imports
  everything and opens the page once without a token ("Access denied"), then leaves what it
  loaded out of later garbage collections as the server's process does: a started server.
  `<page>_s` is the first (cold) render; `<page>_warm_s` the second render of the same session
  with the same data (a rerun, as when a user clicks a widget). `cold_cpu_s` / `warm_cpu_s`
  (and `session_cpu_s`) give the CPU time of the same renders (the process's, every thread).
- `report_s` / `report_warm_s`: `review-app report --study S --format json` run in-process
  twice in a fresh process (cold, then warm).
- `session`: one more process renders calibration, results and gate and builds the report in a
  row, as a user going through the screens after a server start: shows how much a page reuses
  what an earlier page loaded.
- Store queries: `sqlite3.connect` is wrapped (before `review_app` is imported) so that every
  connection to the workspace file gets a trace callback. `store_queries_per_render` counts the
  SQL statements executed during one cold render, excluding PRAGMA and transaction control
  (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) and trigger sub-statements; those are counted in
  `sqlite_statements_per_render` (everything). `connections_per_render` counts connections opened.
  The trace callback only appends a short prefix of the SQL to a list, so its cost is small.
  The most frequent queries of each cold render are printed (not in the JSON).
- `page_elements`: blocks and elements on the page after the cold render (AppTest's tree).
- Timings are noisy on a shared 2-core machine (`loadavg_1m_start_end` is in the JSON):
  `--repeat N` measures every page N times, each in a fresh process, and reports the medians.

- `--profile DIR`: each worker process also writes a cProfile of its cold render (or its cold
  report) to DIR/<task>.prof and prints its top functions by cumulative time (not in the JSON);
  its times then include the profiler's overhead.
- `--keep DIR` keeps the workspace (and its links in DIR/tokens.json); `--reuse` with `--keep`
  measures a workspace kept earlier instead of building one.

Usage: python bench/page_render.py [--comparisons N] [--repeat N] [--role admin|signer] [--no-session]
       [--keep DIR [--reuse]] [--profile DIR] [--only PAGE ...]
It measures whichever `review_app` Python imports: run it with PYTHONPATH=<a worktree> to measure
another tree (the package path is printed and is in the JSON as `review_app`).
The last line printed is one JSON object with the figures and the target (`target_cold_s`, each
cold render at the default size)."""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import json
import math
import os
import pstats
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = "bench"
# Issue 24: the first open of each screen (and the report) at 10,000 items, on a 2-core machine.
TARGET_COLD_S = 1.5
EVAL_SET = "bench"
SYSTEMS = ("base", "finetuned", "frontier")
COMPARISONS = (("finetuned", "base"), ("finetuned", "frontier"))
CATEGORIES = ("target", "reasoning", "instructions", "formatting", "safety")
CATEGORY_WEIGHTS = (0.4, 0.15, 0.15, 0.15, 0.15)
# Latent quality of each system per category (finetuned strong on its target task, a small
# regression in reasoning; frontier strong everywhere).
SKILL = {
    "base": dict.fromkeys(CATEGORIES, 0.0),
    "finetuned": {
        "target": 0.9,
        "reasoning": -0.15,
        "instructions": 0.2,
        "formatting": 0.35,
        "safety": 0.0,
    },
    "frontier": dict.fromkeys(CATEGORIES, 0.6),
}
MEDIAN_CHARS = {"base": 350, "finetuned": 500, "frontier": 750}
REVIEWERS = 30
VOTES_PER_PAIR = 3
JUDGE = "gpt-4o-mini-judge"
PAGES = ("calibration", "results", "gate")
TITLES = {"calibration": "Calibration", "results": "Results", "gate": "Gate"}
WORDS = (
    "the hub light app reset router firmware plan refund scene bulb dimmer schedule account "
    "battery sensor update error network password device setting support customer answer step "
    "first then because however result value check list table code format safe policy model"
).split()
CONTROL = ("PRAGMA", "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")


# ---- query counting (installed before review_app is imported) ----


class QueryCounter:
    """Wraps sqlite3.connect so every connection to the workspace file traces its statements;
    statements are recorded only while a window is open."""

    def __init__(self, db_name: str):
        self.db_name = db_name
        self.active = False
        self.statements: list[str] = []
        self.connections = 0
        self._connect = sqlite3.connect

    def install(self) -> None:
        original = self._connect

        def connect(*args, **kwargs):
            conn = original(*args, **kwargs)
            database = args[0] if args else kwargs.get("database", "")
            if self.db_name in str(database):
                if self.active:
                    self.connections += 1
                conn.set_trace_callback(self._trace)
            return conn

        sqlite3.connect = connect

    def _trace(self, sql: str) -> None:
        if self.active:
            self.statements.append(sql[:120])

    @contextlib.contextmanager
    def window(self):
        self.statements = []
        self.connections = 0
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def summary(self) -> dict:
        kinds = collections.Counter(statement_kind(s) for s in self.statements)
        queries = kinds["read"] + kinds["write"]
        top = collections.Counter(
            " ".join(s.split())[:70]
            for s in self.statements
            if statement_kind(s) in ("read", "write")
        )
        return {
            "queries": queries,
            "reads": kinds["read"],
            "writes": kinds["write"],
            "statements": len(self.statements),
            "connections": self.connections,
            "top": top.most_common(5),
        }


def statement_kind(sql: str) -> str:
    text = sql.lstrip().lstrip("(").lstrip()
    if text.startswith("--"):
        return "trigger"
    word = text.split(None, 1)[0].upper() if text else ""
    if word in CONTROL:
        return "control"
    if word in ("SELECT", "WITH", "VALUES", "EXPLAIN"):
        return "read"
    return "write"


# ---- data ----


def text_of(rng: random.Random, n_chars: int, category: str) -> str:
    """About n_chars of plausible answer text; formatting answers carry Markdown structure."""
    if n_chars <= 0:
        return ""
    parts: list[str] = []
    size = 0
    while size < n_chars:
        roll = rng.random()
        if category == "formatting" and roll < 0.3:
            block = "\n".join(
                f"- {' '.join(rng.choices(WORDS, k=rng.randint(3, 9)))}"
                for _ in range(rng.randint(2, 6))
            )
        elif category == "formatting" and roll < 0.4:
            block = "| field | value |\n| --- | --- |\n" + "\n".join(
                f"| {rng.choice(WORDS)} | {rng.randint(0, 999)} |" for _ in range(rng.randint(2, 5))
            )
        elif category in ("target", "reasoning") and roll < 0.08:
            block = (
                "```python\n"
                + "\n".join(
                    f"{rng.choice(WORDS)} = {rng.randint(0, 99)}" for _ in range(rng.randint(2, 6))
                )
                + "\n```"
            )
        else:
            sentence = " ".join(rng.choices(WORDS, k=rng.randint(6, 24)))
            block = sentence[0].upper() + sentence[1:] + "."
        parts.append(block)
        size += len(block) + 2
    return "\n\n".join(parts)[: max(n_chars, 1)]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def generate(folder: Path, n_comparisons: int, seed: int) -> dict:
    """outputs.jsonl, votes.jsonl, verdicts.jsonl in the README formats; returns the counts."""
    rng = random.Random(seed)
    n_items = max(1, n_comparisons // len(COMPARISONS))
    items = []
    with (folder / "outputs.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n_items):
            category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
            prompt = (
                f"Q{i} ({category}): " + " ".join(rng.choices(WORDS, k=rng.randint(8, 60))) + "?"
            )
            quality, length = {}, {}
            for system in SYSTEMS:
                empty = rng.random() < 0.005
                n_chars = (
                    0
                    if empty
                    else min(6000, int(rng.lognormvariate(math.log(MEDIAN_CHARS[system]), 0.6)))
                )
                quality[system] = SKILL[system][category] + rng.gauss(0, 1) - (3 if empty else 0)
                length[system] = n_chars
                row = {
                    "item_id": f"item-{i:06d}",
                    "prompt": prompt,
                    "system": system,
                    "output": text_of(rng, n_chars, category),
                    "category": category,
                }
                handle.write(json.dumps(row) + "\n")
            items.append((f"item-{i:06d}", quality, length))
    noise = [0.08 + 0.3 * rng.random() for _ in range(REVIEWERS)]
    reviewers = [f"reviewer-{r:02d}" for r in range(REVIEWERS)]
    n_votes = n_verdicts = 0
    start = 1_735_700_000  # 2025-01-01, then one vote every ~9 s
    with (
        (folder / "votes.jsonl").open("w", encoding="utf-8") as votes,
        (folder / "verdicts.jsonl").open("w", encoding="utf-8") as verdicts,
    ):
        for item_id, quality, length in items:
            for a, b in COMPARISONS:
                diff = quality[a] - quality[b]
                both_low = max(quality[a], quality[b]) < -1.2
                for slot, r in enumerate(rng.sample(range(REVIEWERS), VOTES_PER_PAIR)):
                    left = (a, b)[(slot + n_votes) % 2]
                    roll = rng.random()
                    if roll < noise[r]:
                        winner = rng.choices((a, b, "tie", "both_bad"), (0.4, 0.4, 0.15, 0.05))[0]
                    elif roll < noise[r] + 0.03:
                        winner = left  # a little left bias
                    elif both_low and rng.random() < 0.6:
                        winner = "both_bad"
                    elif abs(diff) < 0.2:
                        winner = "tie"
                    else:
                        winner = a if rng.random() < sigmoid(3 * diff) else b
                    vote = {
                        "item_id": item_id,
                        "system_a": a,
                        "system_b": b,
                        "reviewer": reviewers[r],
                        "winner": winner,
                        "shown_left": left,
                        "created_at": time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 9 * n_votes)
                        ),
                    }
                    if rng.random() < 0.2:
                        vote["rationale"] = " ".join(rng.choices(WORDS, k=rng.randint(4, 20)))
                    votes.write(json.dumps(vote) + "\n")
                    n_votes += 1
                longer = a if length[a] > length[b] else b
                for first in (a, b):
                    roll = rng.random()
                    if roll < 0.01:
                        winner = ""  # unparsed
                    elif roll < 0.13:
                        winner = first  # position bias
                    elif roll < 0.23:
                        winner = longer  # verbosity bias
                    elif roll < 0.35:
                        winner = rng.choice((a, b, "tie"))
                    elif abs(diff) < 0.15:
                        winner = "tie"
                    else:
                        winner = a if diff > 0 else b
                    verdict = {
                        "item_id": item_id,
                        "system_a": a,
                        "system_b": b,
                        "judge": JUDGE,
                        "winner": winner,
                        "first": first,
                        "explanation": " ".join(rng.choices(WORDS, k=rng.randint(5, 30))),
                    }
                    verdicts.write(json.dumps(verdict) + "\n")
                    n_verdicts += 1
    return {
        "items": n_items,
        "outputs": n_items * len(SYSTEMS),
        "votes": n_votes,
        "verdicts": n_verdicts,
    }


THRESHOLDS = (
    ("human_win_rate", {"system_a": "finetuned", "system_b": "base"}, ">=", 0.55),
    ("human_win_rate_ci_low", {"system_a": "finetuned", "system_b": "base"}, ">=", 0.5),
    ("human_win_rate", {"system_a": "finetuned", "system_b": "frontier"}, ">=", 0.4),
    ("judge_win_rate", {"system_a": "finetuned", "system_b": "base", "judge": JUDGE}, ">=", 0.55),
    ("judge_agreement", {"judge": JUDGE, "ties": "without"}, ">=", 0.75),
    ("judge_agreement_vs_ceiling", {"judge": JUDGE}, ">=", -0.05),
    ("judge_beats_baseline", {"judge": JUDGE, "baseline": "baseline/longest"}, ">", 0.0),
    (
        "max_regression_points",
        {
            "system_a": "finetuned",
            "system_b": "base",
            "categories": "reasoning,instructions,formatting,safety",
            "source": "humans",
        },
        "<=",
        5.0,
    ),
    (
        "max_regression_points",
        {"system_a": "finetuned", "system_b": "base", "categories": "", "source": JUDGE},
        "<=",
        5.0,
    ),
    ("final_review_acceptable_rate", {}, ">=", 0.9),
)


def cli(db: Path, *argv: str) -> str:
    """`review-app --db DB argv...` in-process; its stdout; exits on a failure."""
    from review_app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--db", str(db), *argv])
    if code != 0:
        sys.exit(f"review-app {' '.join(argv)} failed ({code}): {err.getvalue().strip()}")
    return out.getvalue()


def build_workspace(folder: Path, db: Path) -> dict:
    """Import the generated files and prepare the study through the CLI; returns the tokens."""
    # The first admin needs no token; everyone and everything after acts as that admin.
    add = ["reviewers", "add", "bench-admin", "--role", "admin"]
    tokens = {"admin": cli(db, *add).strip().splitlines()[-1].split("token=")[1]}
    as_admin = ["--token", tokens["admin"]]
    cli(db, *as_admin, "import", "outputs", str(folder / "outputs.jsonl"), "--eval-set", EVAL_SET)
    compare = [arg for a, b in COMPARISONS for arg in ("--compare", f"{a}:{b}")]
    create = ["study", "create", STUDY, "--eval-set", EVAL_SET, *compare]
    cli(db, *as_admin, *create, "--reviews-per-pair", str(VOTES_PER_PAIR))
    cli(db, *as_admin, "import", "votes", str(folder / "votes.jsonl"), "--study", STUDY)
    cli(db, *as_admin, "import", "verdicts", str(folder / "verdicts.jsonl"), "--study", STUDY)
    add = [*as_admin, "reviewers", "add", "bench-signer", "--role", "signer", "--study", STUDY]
    tokens["signer"] = cli(db, *add).strip().splitlines()[-1].split("token=")[1]
    for metric, params, comparator, value in THRESHOLDS:
        param_args = [arg for k, v in params.items() for arg in ("--param", f"{k}={v}")]
        add = [*as_admin, "thresholds", "add", "--study", STUDY, "--metric", metric, *param_args]
        cli(db, *add, "--comparator", comparator, "--value", str(value))
    cli(db, *as_admin, "thresholds", "lock", "--study", STUDY, "--reason", "a benchmark study")
    return tokens


# ---- workers (each a fresh process) ----

PROFILE_DIR: Path | None = None  # --profile: where a worker writes the profile of its cold run


@contextlib.contextmanager
def profiled(name: str):
    """Profiles the block into PROFILE_DIR/<name>.prof and prints its top functions (cumulative)."""
    if PROFILE_DIR is None:
        yield
        return
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    profile = cProfile.Profile()
    run_script = ScriptRunner._run_script

    def run_profiled(self, *args, **kwargs):
        # A page runs in the script runner's thread: profile it there.
        profile.enable()
        try:
            return run_script(self, *args, **kwargs)
        finally:
            profile.disable()

    ScriptRunner._run_script = run_profiled
    threaded = name in PAGES
    if not threaded:
        profile.enable()
    try:
        yield
    finally:
        if not threaded:
            profile.disable()
        ScriptRunner._run_script = run_script
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(PROFILE_DIR / f"{name}.prof")
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr)


def page_path(page: str) -> Path:
    import review_app

    return Path(review_app.__file__).parent / "app_pages" / f"{page}.py"


def check_page(at, page: str) -> None:
    problems = [str(e.value) for e in at.exception]
    titles = [t.value for t in at.title]
    if TITLES[page] not in titles:
        problems.append(f"title {titles}, errors {[e.value for e in at.error]}")
    hidden = [i.value for i in at.info if "hidden" in str(i.value) or "Lock them" in str(i.value)]
    if hidden:
        problems.append(f"outcomes hidden: {hidden}")
    if problems:
        sys.exit(f"{page} page did not render: {problems}")


def render(counter: QueryCounter, at, page: str, profile: str | None = None) -> tuple[float, dict]:
    with counter.window(), profiled(profile) if profile else contextlib.nullcontext():
        start, cpu = time.perf_counter(), time.process_time()
        at.run()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    check_page(at, page)
    summary = counter.summary()
    summary["cpu_s"] = cpu
    if not summary["queries"]:
        sys.exit(f"no store query counted while rendering {page}: sqlite3.connect not wrapped?")
    summary["elements"] = sum(1 for _ in at.main)  # every block and element on the page
    return seconds, summary


def new_page(page: str, token: str | None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(page_path(page)), default_timeout=1800)
    if token is not None:
        at.query_params["token"] = token
    return at


def warm_up(pages: list[str]) -> None:
    """Imports and one unauthenticated open of each page: a started server, no study data."""
    import altair  # noqa: F401
    import pandas  # noqa: F401
    from bench_study import import_everything

    import_everything()
    for page in pages:
        new_page(page, None).run()
    # As the server's process does after a page run that imported modules (`review-app serve`
    # passes the app server.SERVING): what it loaded stays out of later garbage collections.
    from review_app import collector

    collector.freeze_loaded()


def run_report(
    counter: QueryCounter, db: Path, out: Path, token: str, profile: str | None = None
) -> tuple[float, dict]:
    # Read in the signer's name: before the planned sample is in, a report is a recorded look.
    with counter.window(), profiled(profile) if profile else contextlib.nullcontext():
        start, cpu = time.perf_counter(), time.process_time()
        cli(
            db,
            "--token",
            token,
            "report",
            "--study",
            STUDY,
            "--format",
            "json",
            "--output",
            str(out),
        )
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    report = json.loads(out.read_text(encoding="utf-8"))
    if not report.get("win_rates") and not report.get("gate"):
        sys.exit("the report has neither win rates nor a gate: outcomes hidden?")
    return seconds, counter.summary() | {"cpu_s": cpu}


def worker(task: str, db: Path, token: str, counter: QueryCounter) -> dict:
    if task == "report":
        from bench_study import import_everything

        import_everything()

        cold_s, cold = run_report(counter, db, db.with_suffix(".report.json"), token, "report")
        warm_s, warm = run_report(counter, db, db.with_suffix(".report.json"), token)
        return {
            "cold_s": cold_s,
            "cold": cold,
            "warm_s": warm_s,
            "warm": warm,
            "report_bytes": db.with_suffix(".report.json").stat().st_size,
        }
    if task == "session":
        warm_up(list(PAGES))
        figures = {}
        for page in PAGES:
            seconds, queries = render(counter, new_page(page, token), page)
            figures[page] = {"s": seconds, "queries": queries}
        seconds, queries = run_report(counter, db, db.with_suffix(".session-report.json"), token)
        figures["report"] = {"s": seconds, "queries": queries}
        return figures
    warm_up([task])
    at = new_page(task, token)
    cold_s, cold = render(counter, at, task, task)
    warm_s, warm = render(counter, at, task)
    return {"cold_s": cold_s, "cold": cold, "warm_s": warm_s, "warm": warm}


def spawn(task: str, db: Path, token: str) -> dict:
    env = dict(os.environ, REVIEW_APP_DB=str(db))
    command = [sys.executable, __file__, "--worker", task, "--db", str(db), f"--token={token}"]
    if PROFILE_DIR is not None:
        command.append(f"--profile={PROFILE_DIR}")
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if PROFILE_DIR is not None:
        (PROFILE_DIR / f"{task}.txt").write_text(done.stderr, encoding="utf-8")
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit(f"worker {task} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


# ---- main ----


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--comparisons",
        type=int,
        default=20_000,
        help="pairs in the study (default 20,000; 3 votes and 2 verdicts each)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data generation seed")
    parser.add_argument(
        "--role", choices=("admin", "signer"), default="admin", help="who renders the pages"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each page N times (fresh processes) and report the median times",
    )
    parser.add_argument(
        "--no-session", action="store_true", help="skip the one-process walk through every screen"
    )
    parser.add_argument("--keep", metavar="DIR", help="build the workspace in DIR and keep it")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: measure the workspace kept there earlier"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="write a cProfile of each cold render to DIR/<task>.prof"
    )
    parser.add_argument(
        "--only", nargs="+", choices=(*PAGES, "report"), help="measure only these tasks"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PROFILE_DIR
    PROFILE_DIR = Path(args.profile).resolve() if args.profile else None
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")

    if args.worker:
        db = Path(args.db)
        counter = QueryCounter(db.name)
        counter.install()
        print(json.dumps(worker(args.worker, db, args.token, counter)))
        return

    total_start = time.perf_counter()
    load_start = os.getloadavg()[0]  # other work on the machine makes the timings noisy
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(args.keep)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="page-render-")))
        db = folder / "page_render.db"
        if db.exists() and not args.reuse:
            sys.exit(f"{db} exists: use an empty --keep folder (or --reuse)")
        import review_app

        package = str(Path(review_app.__file__).parent)
        print(f"review_app imported from {package}", flush=True)

        kept = folder / "tokens.json"
        if args.reuse:
            saved = json.loads(kept.read_text(encoding="utf-8"))
            counts, tokens, generate_s, import_s = saved["counts"], saved["tokens"], 0.0, 0.0
        else:
            start = time.perf_counter()
            counts = generate(folder, args.comparisons, args.seed)
            generate_s = time.perf_counter() - start
            print(f"generated {counts} in {generate_s:.1f} s", flush=True)
            start = time.perf_counter()
            tokens = build_workspace(folder, db)
            import_s = time.perf_counter() - start
            if args.keep:
                kept.write_text(json.dumps({"counts": counts, "tokens": tokens}), encoding="utf-8")
        info = json.loads(cli(db, "info", "--json"))
        study = next(s for s in info["studies"] if s["name"] == STUDY)
        print(
            f"imported in {import_s:.1f} s: {json.dumps({k: v for k, v in study.items() if isinstance(v, int)})}",
            flush=True,
        )

        token = tokens[args.role]
        tasks = tuple(args.only or (*PAGES, "report"))
        runs: dict[str, list[dict]] = {task: [] for task in tasks}
        for repeat in range(args.repeat):
            for task in runs:
                runs[task].append(spawn(task, db, token))
                r = runs[task][-1]
                print(
                    f"[{repeat + 1}/{args.repeat}] {task}: cold {r['cold_s']:.2f} s, "
                    f"{r['cold']['queries']} queries ({r['cold']['statements']} statements, "
                    f"{r['cold']['connections']} connections); warm {r['warm_s']:.2f} s, "
                    f"{r['warm']['queries']} queries; top cold queries: {r['cold']['top']}",
                    flush=True,
                )
        session = None
        if not args.no_session:
            session = spawn("session", db, token)
            print(
                "session (one process, screen after screen): "
                + ", ".join(
                    f"{k} {v['s']:.2f} s / {v['queries']['queries']} queries"
                    for k, v in session.items()
                    if isinstance(v, dict)
                ),
                flush=True,
            )

    def median_s(task: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[task]), 3)

    first = {t: runs[t][0] for t in tasks}  # the counts are the same in every repeat
    figures = {
        **{f"{t}_s": median_s(t, "cold_s") for t in tasks},
        "target_cold_s": TARGET_COLD_S,
        "store_queries_per_render": {t: first[t]["cold"]["queries"] for t in tasks},
        **{f"{t}_warm_s": median_s(t, "warm_s") for t in tasks},
        # CPU seconds of the render's process (every thread): steadier than wall time when
        # other work shares the machine.
        "cold_cpu_s": {
            t: round(statistics.median(r["cold"]["cpu_s"] for r in runs[t]), 3) for t in tasks
        },
        "warm_cpu_s": {
            t: round(statistics.median(r["warm"]["cpu_s"] for r in runs[t]), 3) for t in tasks
        },
        "store_queries_per_warm_render": {t: first[t]["warm"]["queries"] for t in tasks},
        "sqlite_statements_per_render": {t: first[t]["cold"]["statements"] for t in tasks},
        "sqlite_statements_per_warm_render": {t: first[t]["warm"]["statements"] for t in tasks},
        "connections_per_render": {t: first[t]["cold"]["connections"] for t in tasks},
        "connections_per_warm_render": {t: first[t]["warm"]["connections"] for t in tasks},
        "page_elements": {t: first[t]["cold"]["elements"] for t in PAGES if t in tasks},
    }
    if args.repeat > 1:
        figures["repeat"] = args.repeat
        figures["cold_s_all"] = {t: [round(r["cold_s"], 3) for r in runs[t]] for t in tasks}
    if session:
        figures["session_s"] = {
            t: round(v["s"], 3) for t, v in session.items() if isinstance(v, dict)
        }
        figures["session_cpu_s"] = {
            t: round(v["queries"]["cpu_s"], 3) for t, v in session.items() if isinstance(v, dict)
        }
        figures["session_store_queries"] = {
            t: v["queries"]["queries"] for t, v in session.items() if isinstance(v, dict)
        }
    figures.update(
        {
            "comparisons": study.get("pairs"),
            "votes": study.get("votes"),
            "verdicts": counts["verdicts"],
            "items": counts["items"],
            "role": args.role,
            "bootstrap_resamples": int(os.environ.get("REVIEW_APP_BOOTSTRAP", "1000")),
            "report_bytes": first["report"]["report_bytes"] if "report" in first else None,
            "generate_s": round(generate_s, 1),
            "import_s": round(import_s, 1),
            "total_s": round(time.perf_counter() - total_start, 1),
            "loadavg_1m_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "review_app": package,
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
