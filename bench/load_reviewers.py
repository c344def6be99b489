"""Many reviewers on one server or several: N real sessions vote with think time for M minutes,
optionally while a large import runs, against `review-app serve` in subprocesses.

What: a workspace with one study of 2 x ITEMS pairs (finetuned vs base, finetuned vs frontier;
3 reviews per pair) and one reviewer link per session.

How:
- Each session is a websocket client of the real Streamlit server speaking its protocol
  (`streamlit.proto` BackMsg / ForwardMsg), as the browser does: it opens the personal link,
  waits for the page to finish drawing, then repeatedly thinks (uniformly 0.5-1.5 x --think
  seconds, seeded) and clicks a vote button (a rerun carrying the button's trigger).
- Latency is measured at the server boundary: from sending the click to receiving the end of
  the script run that draws the next pair (`script_finished`). A vote counts as saved when that
  page says "Saved"; anything else (a "Not saved" notice, an exception on the page, no answer
  within 60 s, a closed connection) is an error.
- `--servers N` starts N `review-app serve` processes on N ports sharing the one workspace and
  hands the sessions to them in turn (session n to server n mod N). `--db` names the workspace:
  by default a SQLite file in a temporary folder; a `postgresql://` URL names a database on a
  PostgreSQL server, created when it does not exist, refused when it already holds a workspace
  with data (the figures must count this run's votes only). The database is kept afterwards.
- Each server's resident memory and open files (/proc/<pid>) are sampled every 2 s.
  `rss_start_mb` is the first sample after the warm-up (--warmup, default: a fifth of the run,
  at most 60 s), `rss_end_mb` the last one. Open files move with the page runs in progress
  (each holds a few for a moment), so `fds_start` / `fds_end` are the fewest open files over
  the first and the last fifth of the time after the warm-up: what stays open. The top-level
  memory and open-file figures are the largest among the servers (the one server's when there
  is one); `per_server` gives each server's.
- `--import-rows N` writes an outputs file of N rows (about 300 bytes each) before the run and
  imports it with `review-app import outputs` in a second process once --import-at of the run
  has passed; `max_vote_wait_during_import_ms` is the slowest vote sent while it ran. Meanwhile
  a probe takes and releases the workspace's write lock every 0.1 s: `*_lock_wait_*` is how
  long that took, the part of a vote's wait due to the import's transactions rather than to
  the CPU the server and the import share.
- `server_cpu_ms_per_vote`: the server processes' CPU time over the run (summed over the
  servers; PostgreSQL's own processes are not counted) divided by the votes,
  a figure that depends far less on what else the machine is doing than the latencies do.
  It includes each session's first page and the servers' idle work; the same over the time
  after the warm-up (`server_cpu_ms_per_vote_after_warmup`) is what a vote itself costs.
- Afterwards the votes are read back from the workspace: `lost` = votes a session saw saved
  that are not there, `duplicated` = extra vote rows (a reviewer twice on a pair, or more votes
  than saved clicks) plus pairs holding more than their 3 reviews; `repeated_pairs` = a session
  shown a pair it had already voted on; `pairs_over_k` = pairs holding more current votes (a
  reviewer's latest vote on the pair, not retracted) than the study's reviews per pair.

Usage: python bench/load_reviewers.py [--sessions N] [--minutes M] [--think S] [--items N]
    [--import-rows N] [--import-at F] [--warmup S] [--seed N] [--servers N] [--db URL]
It measures the `review_app` beside it: to measure another tree, run that tree's own
`bench/load_reviewers.py` (e.g. of a `git worktree`). Its servers run that same code, whatever the
current folder or PYTHONPATH; the JSON names it (`review_app`).
The last line printed is one JSON object with the figures."""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import html
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402  (a dependency of streamlit)
from bench_study import bench_admin  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from review_app.services import data, people, studies  # noqa: E402
from review_app.settings import Settings, is_server_url  # noqa: E402
from review_app.store import Store  # noqa: E402
from review_app.store.connection import connect  # noqa: E402

SYSTEMS = ("base", "finetuned", "frontier")
K = 3
CHOICES = ("vote-A", "vote-B", "vote-tie", "vote-both_bad")
ANSWER_TIMEOUT = 60.0
SAMPLE_S = 2.0  # seconds between memory samples
# The targets (issue 24): CPU per vote on one server; p95 at 150 sessions on one server; memory
# after the warm-up; the slowest vote sent while an import runs (with --import-rows).
TARGETS = {
    "server_cpu_ms_per_vote": 8.0,
    "p95_ms_150_sessions": 300.0,
    "rss_growth_pct": 10.0,
    "max_vote_wait_during_import_ms": 1000.0,
}


# ---- the workspace ----


def build_workspace(db: str, folder: Path, items: int, sessions: int) -> tuple[list[str], str]:
    """A study over `items` items (two comparisons, K reviews per pair) in the workspace at `db`
    (a SQLite path or a postgresql:// URL), its source file written in `folder`; returns one
    reviewer token per session, and the admin's token (which the import acts with)."""
    source = folder / "outputs.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category"])
        for i in range(items):
            for system in SYSTEMS:
                text = f"Reply {i} by {SYSTEMS.index(system)}: reset the hub, then pair it. " * 3
                writer.writerow(
                    [f"item-{i:06d}", f"Question {i}: the hub is offline.", system, text, "support"]
                )
    store = Store.open(db)
    settings = Settings.from_env()
    admin, admin_token = bench_admin(store)
    data.import_outputs(store, source, "load", actor=admin)
    studies.create_study(
        store, "load", "load", [("finetuned", "base"), ("finetuned", "frontier")], K, actor=admin
    )
    tokens = []
    for n in range(sessions):
        _, link = people.add_reviewer(
            store, settings, f"load-{n:03d}", "reviewer", "load", actor=admin
        )
        tokens.append(link.split("token=")[1])
    store.close()
    source.unlink()
    return tokens, admin_token


def write_import_file(path: Path, rows: int) -> None:
    """`rows` output rows (two systems per item) for an eval set of its own."""
    rng = random.Random(1)
    words = "hub light app reset button firmware amber pulse wifi router scene schedule".split()
    with path.open("w", encoding="utf-8") as handle:
        for n in range(rows):
            item = n // 2
            row = {
                "item_id": f"bulk-{item:07d}",
                "prompt": f"Bulk question {item}: how do I reset the hub?",
                "system": ("bulk-a", "bulk-b")[n % 2],
                "output": " ".join(rng.choice(words) for _ in range(30)),
                "category": "bulk",
            }
            handle.write(json.dumps(row) + "\n")


def verify(db: str, saved: dict[str, int]) -> dict:
    """Votes read back from the workspace against what the sessions saw saved."""
    store = Store.open(db)
    study = store.studies.require_study("load")
    history = [v for v in store.review.vote_history(study["id"]) if v["source"] == "app"]
    store.close()
    per_reviewer = Counter(v["reviewer"] for v in history if v["winner"] is not None)
    per_pair_reviewer = Counter(
        (v["item_key"], v["system_x"], v["system_y"], v["reviewer"]) for v in history
    )
    per_pair = Counter((v["item_key"], v["system_x"], v["system_y"]) for v in history)
    lost = sum(max(0, n - per_reviewer.get(name, 0)) for name, n in saved.items())
    extra = sum(max(0, per_reviewer.get(name, 0) - n) for name, n in saved.items())
    twice = sum(n - 1 for n in per_pair_reviewer.values() if n > 1)
    over_k = sum(n - K for n in per_pair.values() if n > K)
    return {
        "votes_in_db": len(history),
        "lost": lost,
        "duplicated": extra + twice + over_k,
        "pairs_over_k": pairs_over_k(db, "load"),
    }


def pairs_over_k(db: str, study: str) -> int:
    """Pairs of the study holding more current votes (each reviewer's latest vote on the pair,
    not a retraction) than the study's reviews per pair, read from the database itself."""
    conn = connect(db, read_only=True)
    try:
        row = conn.execute(
            "SELECT count(*) FROM ("
            " SELECT v.pair_id FROM votes v JOIN pairs p ON p.id = v.pair_id"
            " JOIN studies s ON s.id = p.study_id"
            " WHERE s.name = ? AND v.winner IS NOT NULL AND v.id = ("
            "  SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
            " GROUP BY v.pair_id, s.reviews_per_pair HAVING count(*) > s.reviews_per_pair"
            ") AS over_k",
            [study],
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def prepare_database(location: str | None, folder: Path) -> str:
    """The workspace to load: a SQLite file in `folder` by default; else `location`, which must
    not already hold a workspace with data (a PostgreSQL database that does not exist yet is
    created on its server)."""
    if location is None:
        return str(folder / "load.db")
    if is_server_url(location):
        import psycopg

        server, _, name = location.rstrip("/").rpartition("/")
        if not name or "?" in name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise SystemExit(f"--db {location}: name a database (letters, digits and _)")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
                return location
    elif not Path(location).exists():
        return location
    conn = connect(location)
    try:
        tables = set(conn.table_names())
        used = [
            t
            for t in ("eval_sets", "items", "studies", "reviewers", "votes")
            if t in tables and conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        ]
    finally:
        conn.close()
    if used:
        raise SystemExit(
            f"--db {location} already holds a workspace with data ({', '.join(used)}); "
            "name a new or empty database"
        )
    return location


# ---- the server ----


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`review-app serve` in its own process group; `pid` is the Streamlit process itself."""

    def __init__(self, db: str, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # `python -m` looks in the current folder first (before PYTHONPATH): run from the tree
        # this file belongs to, so the servers run the code the figures are reported for.
        env = dict(os.environ, REVIEW_APP_DB=str(db))
        command = [sys.executable, "-m", "review_app.cli", "--db", str(db), "serve"]
        self.process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"the app did not start on {self.url}")
        # `serve` runs Streamlit as its child; that child is the process to watch.
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        kids = children.read_text().split()
        self.pid = int(kids[0]) if kids else self.process.pid
        # The `review_app` folder whose app it serves, read from its command line: the code
        # the figures are for.
        arguments = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        script = next(a.decode() for a in arguments if a.endswith(b"streamlit_app.py"))
        self.app_folder = str(Path(script).parent)

    def sample(self) -> tuple[float, int]:
        """(resident memory in MB, open files) of the server process."""
        rss_kb = 0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        return rss_kb / 1024, len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_files(self) -> dict[str, int]:
        """The server's open files by kind: workspace files, sockets, pipes, others."""
        kinds: Counter[str] = Counter()
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                continue
            if ".db" in target:
                kinds["workspace" + target.rsplit(".db", 1)[1]] += 1
            else:
                kinds[target.split(":", 1)[0] if ":" in target else "file"] += 1
        return dict(sorted(kinds.items()))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


# ---- one session ----


@dataclass
class Page:
    """What one script run drew: the vote buttons' widget ids, the pair, the notice."""

    buttons: dict[str, str] = field(default_factory=dict)
    # button widget id -> the fragment it was drawn in ("" when none): the browser sends a
    # click on such a button as a rerun of that fragment only, and so does a session here.
    fragments: dict[str, str] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    exception: str | None = None

    @property
    def pair(self) -> str | None:
        """A fingerprint of the pair on screen that does not depend on its left/right order."""
        # The prompt and the two responses, whether drawn as one element or three.
        outputs = [
            part.split("</div></div>")[0]
            for part in "".join(self.texts).split('class="review-output')[1:]
        ]
        if len(outputs) < 3:
            return None
        prompt, *sides = outputs[:3]
        return hashlib.sha1("\n".join([prompt, *sorted(sides)]).encode()).hexdigest()


@dataclass
class Vote:
    sent: float  # seconds since the run started
    ms: float
    saved: bool


class Session:
    def __init__(self, name: str, token: str, ws_url: str, rng: random.Random):
        self.name, self.token, self.ws_url, self.rng = name, token, ws_url, rng
        self.page_hash = ""
        self.fragments: dict[str, str] = {}
        self.votes: list[Vote] = []
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.repeated = 0

    async def run(self, start: float, stop_at: float, think: float) -> None:
        try:
            async with websockets.connect(
                self.ws_url, subprotocols=["streamlit"], max_size=None, ping_interval=None
            ) as ws:
                page = await self._rerun(ws, None)
                await asyncio.sleep(self.rng.uniform(0, think))
                while time.monotonic() + 0.5 < stop_at:
                    if page.pair is None or not page.buttons:
                        self.errors.append(f"{self.name}: no pair on screen")
                        return
                    await asyncio.sleep(think * self.rng.uniform(0.5, 1.5))
                    if time.monotonic() >= stop_at:
                        return
                    shown = page.pair
                    button = page.buttons[self.rng.choice(CHOICES)]
                    sent = time.monotonic()
                    page = await self._rerun(ws, button)
                    ms = (time.monotonic() - sent) * 1000
                    saved = any(n.startswith("Saved") for n in page.notices)
                    self.votes.append(Vote(sent - start, ms, saved))
                    if saved:
                        self.seen.add(shown)
                    else:
                        self.errors.append(
                            f"{self.name}: {page.exception or ' / '.join(page.notices) or 'no notice'}"
                        )
                    if page.pair in self.seen:
                        self.repeated += 1
        except (OSError, TimeoutError, websockets.ConnectionClosed) as exc:
            self.errors.append(f"{self.name}: {type(exc).__name__}: {exc}")

    async def _rerun(self, ws, button_id: str | None) -> Page:
        message = BackMsg()
        state = message.rerun_script
        state.query_string = f"token={self.token}"
        state.page_script_hash = self.page_hash
        if button_id:
            widget = state.widget_states.widgets.add()
            widget.id = button_id
            widget.trigger_value = True
            state.fragment_id = self.fragments.get(button_id, "")
        await ws.send(message.SerializeToString())
        page = Page()
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(await ws.recv())
                kind = forward.WhichOneof("type")
                if kind == "navigation":
                    self.page_hash = forward.navigation.page_script_hash
                elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                    _read_element(forward.delta.new_element, page)
                    for button in page.buttons.values():
                        page.fragments.setdefault(button, forward.delta.fragment_id)
                elif kind == "script_finished":
                    if forward.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        continue
                    self.fragments = page.fragments
                    return page


def _read_element(element, page: Page) -> None:
    kind = element.WhichOneof("type")
    if kind == "button":
        # Widget ids read "$$ID-<hash>-<key>"; the key is what the page named the button, with
        # the pair's slot at its end ("vote-A-3"): buttons are known by the name before it.
        key = element.button.id.split("-", 2)[-1]
        name, _, slot = key.rpartition("-")
        page.buttons[name if slot.isdigit() else key] = element.button.id
    elif kind == "html":
        page.texts.append(element.html.body)
        # The review screen's one-line notice ("Saved: ...") is drawn as HTML.
        notice = re.search(r'class="review-notice[^"]*"[^>]*>([^<]*)<', element.html.body)
        if notice and notice.group(1).strip():
            page.notices.append(html.unescape(notice.group(1).strip()))
    elif kind == "alert":
        page.notices.append(element.alert.body)
    elif kind == "exception":
        page.exception = f"{element.exception.type}: {element.exception.message}"


# ---- the run ----


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def drive(
    args,
    servers: list[Server],
    tokens: list[str],
    admin_token: str,
    db: str,
    import_file: Path | None,
):
    ws_urls = [s.url.replace("http://", "ws://") + "/_stcore/stream" for s in servers]
    sessions = [
        Session(
            f"load-{n:03d}",
            token,
            ws_urls[n % len(servers)],
            random.Random(args.seed * 1000 + n),
        )
        for n, token in enumerate(tokens)
    ]
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, duration / 5)
    start = time.monotonic()
    stop_at = start + duration
    samples: list[list[tuple[float, float, int]]] = [[(0.0, *s.sample())] for s in servers]
    cpu_start = [s.cpu_seconds() for s in servers]
    cpu_at_warmup: list[float] = []  # (seconds since start, then each server's CPU seconds)
    import_window: list[float] = []
    import_result: dict = {}
    lock_waits: list[float] = []

    async def sampler() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(SAMPLE_S)
            at = time.monotonic() - start
            for server, taken in zip(servers, samples, strict=True):
                taken.append((at, *server.sample()))
            if at >= warmup and not cpu_at_warmup:
                cpu_at_warmup.extend([at, *(s.cpu_seconds() for s in servers)])

    async def importer() -> None:
        await asyncio.sleep(duration * args.import_at)
        stop_probe = threading.Event()
        probe = threading.Thread(target=probe_write_lock, args=(db, stop_probe, lock_waits))
        probe.start()
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "review_app.cli",
            "--db",
            str(db),
            "import",
            "outputs",
            str(import_file),
            "--eval-set",
            "bulk",
            "--token",
            admin_token,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        ended = time.monotonic()
        stop_probe.set()
        probe.join()
        import_window.extend([began - start, ended - start])
        import_result.update(
            status=process.returncode,
            seconds=round(ended - began, 1),
            output=(out or err).decode().strip().splitlines()[-1:],
        )

    tasks = [asyncio.create_task(s.run(start, stop_at, args.think)) for s in sessions]
    helpers = [asyncio.create_task(sampler())]
    if import_file is not None:
        helpers.append(asyncio.create_task(importer()))
    await asyncio.gather(*tasks)
    await asyncio.gather(*helpers)
    server_end = [
        {
            "cpu_s": s.cpu_seconds() - cpu,
            "cpu_s_after_warmup": s.cpu_seconds() - warm if cpu_at_warmup else None,
            "open_files": s.open_files(),
        }
        for s, cpu, warm in zip(servers, cpu_start, cpu_at_warmup[1:] or cpu_start, strict=True)
    ]
    import_result["lock_waits"] = lock_waits
    warm_at = cpu_at_warmup[0] if cpu_at_warmup else None
    return sessions, samples, warmup, warm_at, import_window, import_result, server_end


def probe_write_lock(db: str, stop: threading.Event, waits: list[float]) -> None:
    """Every 0.1 s, how long taking the workspace's write lock takes (the store's write
    transaction: BEGIN IMMEDIATE on SQLite, the workspace's advisory lock on PostgreSQL; then
    ROLLBACK at once): what a vote waits behind other writers, without the page's own work."""
    conn = connect(db)
    try:
        while not stop.is_set():
            started = time.monotonic()
            conn.begin_write()
            conn.rollback()
            waits.append(time.monotonic() - started)
            stop.wait(0.1)
    finally:
        conn.close()


def growth(start: float, end: float) -> float:
    return round(100 * (end - start) / start, 1) if start else 0.0


def memory_figures(samples: list[tuple[float, float, int]], warmup: float) -> dict:
    """One server's memory and open files from its samples (seconds, MB, open files)."""
    after_warmup = [s for s in samples if s[0] >= warmup] or samples[-1:]
    fifth = max(1, len(after_warmup) // 5)
    fds_start = min(s[2] for s in after_warmup[:fifth])
    fds_end = min(s[2] for s in after_warmup[-fifth:])
    return {
        "rss_boot_mb": round(samples[0][1], 1),
        "rss_start_mb": round(after_warmup[0][1], 1),
        "rss_end_mb": round(samples[-1][1], 1),
        "rss_max_mb": round(max(s[1] for s in samples), 1),
        "fds_boot": samples[0][2],
        "fds_start": fds_start,
        "fds_end": fds_end,
        "fds_max": max(s[2] for s in samples),
        "rss_growth_pct": growth(after_warmup[0][1], samples[-1][1]),
        "fds_growth_pct": growth(fds_start, fds_end),
        "rss_slope_mb_per_10min": slope_per_10min(after_warmup),
        # One sample a minute after the warm-up (MB): the trend, for the eye.
        "rss_by_minute_mb": [round(s[1], 1) for s in after_warmup[:: max(1, int(60 / SAMPLE_S))]],
    }


def slope_per_10min(samples: list[tuple[float, float, int]]) -> float:
    """Least-squares slope of resident memory over time, in MB per 10 minutes: an upward trend
    shows here even when the last sample happens to sit low."""
    if len(samples) < 2:
        return 0.0
    times = [s[0] for s in samples]
    mbs = [s[1] for s in samples]
    mean_t, mean_mb = statistics.fmean(times), statistics.fmean(mbs)
    var = sum((t - mean_t) ** 2 for t in times)
    if not var:
        return 0.0
    cov = sum((t - mean_t) * (mb - mean_mb) for t, mb in zip(times, mbs, strict=True))
    return round(cov / var * 600, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--think", type=float, default=6, help="mean seconds between votes")
    parser.add_argument("--items", type=int, default=20_000, help="items; pairs = 2 x items")
    parser.add_argument("--import-rows", type=int, default=0)
    parser.add_argument("--import-at", type=float, default=0.3, help="fraction of the run")
    parser.add_argument("--warmup", type=float, default=None, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--servers", type=int, default=1, help="app servers sharing the workspace")
    parser.add_argument(
        "--db",
        default=None,
        help="workspace: a postgresql:// URL or a SQLite path (default: a SQLite file in a "
        "temporary folder); must not hold a workspace with data",
    )
    args = parser.parse_args()
    if args.servers < 1:
        parser.error("--servers must be at least 1")

    with tempfile.TemporaryDirectory() as tmp:
        db = prepare_database(args.db, Path(tmp))
        ports: list[int] = []
        while len(ports) < args.servers:
            port = free_port()
            if port not in ports:
                ports.append(port)
        setup_started = time.monotonic()
        tokens, admin_token = build_workspace(db, Path(tmp), args.items, args.sessions)
        import_file = None
        if args.import_rows:
            import_file = Path(tmp) / "bulk.jsonl"
            write_import_file(import_file, args.import_rows)
        setup_s = time.monotonic() - setup_started
        servers: list[Server] = []
        try:
            for port in ports:
                servers.append(Server(db, port))
            for server in servers:
                server.wait_ready()
            sessions, samples, warmup, warm_at, window, imported, server_end = asyncio.run(
                drive(args, servers, tokens, admin_token, db, import_file)
            )
        finally:
            for server in servers:
                server.stop()
        saved = {s.name: sum(v.saved for v in s.votes) for s in sessions}
        checked = verify(db, saved)

    lock_waits = imported.pop("lock_waits", [])
    votes = [v for s in sessions for v in s.votes]
    ms = [v.ms for v in votes]
    during = [v.ms for v in votes if window and window[0] <= v.sent <= window[1]]
    per_server = [
        {
            "port": server.port,
            "sessions": sum(1 for n in range(len(sessions)) if n % len(servers) == i),
            **memory_figures(taken, warmup),
            "fds_by_kind_end": end["open_files"],
            "cpu_s": round(end["cpu_s"], 1),
        }
        for i, (server, taken, end) in enumerate(zip(servers, samples, server_end, strict=True))
    ]
    largest = {
        key: max(figures[key] for figures in per_server)
        for key in per_server[0]
        if key.startswith(("rss_", "fds_")) and key not in ("fds_by_kind_end", "rss_by_minute_mb")
    }
    kinds = sorted({kind for figures in per_server for kind in figures["fds_by_kind_end"]})
    fds_by_kind_end = {
        kind: max(figures["fds_by_kind_end"].get(kind, 0) for figures in per_server)
        for kind in kinds
    }
    cpu_s = sum(end["cpu_s"] for end in server_end)
    cpu_ms_per_vote = round(cpu_s * 1000 / max(1, len(votes)), 1)
    # The same after the warm-up: without each session's first page (the whole app's first
    # run), which the figure above spreads over the votes of the run.
    votes_after_warmup = sum(1 for v in votes if warm_at is not None and v.sent >= warm_at)
    cpu_ms_per_vote_after_warmup = (
        round(sum(e["cpu_s_after_warmup"] for e in server_end) * 1000 / votes_after_warmup, 1)
        if votes_after_warmup
        else None
    )
    p95 = round(percentile(ms, 95), 1)
    errors = [e for s in sessions for e in s.errors]
    for line in errors[:20]:
        print("error:", line)
    print(
        json.dumps(
            {
                "review_app": sorted({s.app_folder for s in servers}),
                "servers": len(servers),
                "backend": "postgresql" if is_server_url(db) else "sqlite",
                "sessions": args.sessions,
                "minutes": args.minutes,
                "think_s": args.think,
                "pairs": 2 * args.items,
                "votes": sum(saved.values()),
                "votes_in_db": checked["votes_in_db"],
                "lost": checked["lost"],
                "duplicated": checked["duplicated"],
                "pairs_over_k": checked["pairs_over_k"],
                "errors": len(errors),
                "repeated_pairs": sum(s.repeated for s in sessions),
                "p50_ms": round(percentile(ms, 50), 1),
                "p95_ms": p95,
                "p99_ms": round(percentile(ms, 99), 1),
                "max_ms": round(max(ms, default=0), 1),
                "mean_ms": round(statistics.fmean(ms), 1) if ms else 0,
                "warmup_s": warmup,
                **largest,
                "fds_by_kind_end": fds_by_kind_end,
                "server_cpu_ms_per_vote": cpu_ms_per_vote,
                "server_cpu_ms_per_vote_after_warmup": cpu_ms_per_vote_after_warmup,
                "import_rows": args.import_rows,
                "import": imported or None,
                "import_window_s": [round(t, 1) for t in window] or None,
                "votes_during_import": len(during),
                "max_vote_wait_during_import_ms": round(max(during, default=0), 1),
                "p95_during_import_ms": round(percentile(during, 95), 1),
                "votes_over_1s_during_import": sum(ms > 1000 for ms in during),
                "max_lock_wait_during_import_ms": round(1000 * max(lock_waits, default=0), 1),
                "p99_lock_wait_during_import_ms": round(1000 * percentile(lock_waits, 99), 1),
                "targets": TARGETS,
                "met": {
                    "server_cpu_ms_per_vote": cpu_ms_per_vote <= TARGETS["server_cpu_ms_per_vote"],
                    "p95_ms_150_sessions": (
                        p95 <= TARGETS["p95_ms_150_sessions"]
                        if args.sessions >= 150 and len(servers) == 1
                        else None
                    ),
                    "rss_growth_pct": largest["rss_growth_pct"] < TARGETS["rss_growth_pct"],
                    "max_vote_wait_during_import_ms": (
                        max(during, default=0) <= TARGETS["max_vote_wait_during_import_ms"]
                        if during
                        else None
                    ),
                },
                "setup_s": round(setup_s, 1),
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "per_server": per_server,
            }
        )
    )


if __name__ == "__main__":
    main()
