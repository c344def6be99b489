"""Running the web app: Streamlit in a child process on a workspace, its output relayed without
Streamlit's own URL banner (that URL has no token, so it only leads to "Access denied"), a
callback once the app answers, and the child stopped with the parent on SIGTERM, SIGINT or
SIGHUP (and, on Linux, when the parent dies without cleaning up)."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from review_app import links
from review_app.settings import Settings

APP = Path(__file__).resolve().parent / "streamlit_app.py"
# Seconds the child gets to stop after SIGTERM before it is killed.
STOP_GRACE = 4.0
READY_TIMEOUT = 60.0
# Passed to the app by `run_app`: the app runs in a server process of its own, not inside a
# test's or a notebook's, so it may tune that process (`collector.freeze_loaded`).
SERVING = "--serving"
_BANNER = re.compile(
    r"^\s*$|You can now view your Streamlit app|^\s*(Local |Network |External )?URL:"
)


class _Stop(Exception):
    """A stop signal arrived; carries its number."""


def _stop_with_parent() -> None:
    # Runs in the child before exec: if the parent is killed outright, the kernel sends the
    # child SIGTERM instead of leaving it serving the port.
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _relay(stream) -> None:
    for line in stream:
        if not _BANNER.search(line):
            sys.stdout.write(line)
            sys.stdout.flush()


def _wait_ready(url: str, process: subprocess.Popen, on_ready: Callable[[], None]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    on_ready()
                    return
        except OSError:
            time.sleep(0.2)


def run_app(settings: Settings, on_ready: Callable[[], None] | None = None) -> int:
    """Serve the app on the workspace of `settings` (a file or a database URL), on its host and
    port (under the path of its public URL, if any), until the child exits or a stop signal
    arrives; returns the exit status (0 after a requested stop). `on_ready` runs once the app
    answers."""
    prefix = links.path_prefix(settings.public_url)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        settings.host,
        "--server.port",
        str(settings.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        # A full garbage collection after every page run costs ~60 ms of CPU on a heap holding
        # pandas; under many reviewers it was most of the server's work. Python's own
        # generational collector still runs (the load benchmark checks memory stays flat).
        "--runner.postScriptGC",
        "false",
        # The app's files do not change while it serves: no watching them on every run.
        "--server.fileWatcherType",
        "none",
        # Visitors see a generic error, never a traceback (it names files, queries and data);
        # the details go to this terminal. review_app/.streamlit/config.toml says the same to
        # `streamlit run`.
        "--client.showErrorDetails",
        "none",
    ]
    if prefix:
        # A proxy at https://example.com/review/ passes the path through, so the app answers
        # under it too (its pages, static files and websocket).
        command += ["--server.baseUrlPath", prefix]
    # The app's own argument (after "--"): it runs in a server process of its own.
    command += ["--", SERVING]
    # The app builds its Settings from the environment: it gets the ones this command used.
    env = dict(
        os.environ,
        REVIEW_APP_DB=settings.db_location(),
        REVIEW_APP_PUBLIC_URL=settings.public_url,
        REVIEW_APP_HOST=settings.host,
        REVIEW_APP_PORT=str(settings.port),
    )
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        preexec_fn=_stop_with_parent,
    )

    def stop(signum, frame) -> None:
        raise _Stop(signum)

    previous = {
        sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    relay = threading.Thread(target=_relay, args=(process.stdout,), daemon=True)
    relay.start()
    if on_ready is not None:
        url = links.server_address(settings.host, settings.port) + (f"/{prefix}" if prefix else "")
        threading.Thread(target=_wait_ready, args=(url, process, on_ready), daemon=True).start()
    try:
        return process.wait()
    except _Stop:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        relay.join(timeout=1)
