"""Real-browser fixtures: one app server per test module on a free port, and Debian's chromium
driven by Playwright (never a downloaded browser). Tests skip only when chromium is missing."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from review_app import links

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """`review-app serve` on a workspace file, in a subprocess; with `public_url`, served under
    that URL's path (`url` is then the server's own address of that path)."""

    def __init__(self, db: Path, public_url: str | None = None):
        self.db = db
        self.port = free_port()
        prefix = links.path_prefix(public_url or "")
        self.url = f"http://127.0.0.1:{self.port}" + (f"/{prefix}" if prefix else "")
        env = dict(os.environ, REVIEW_APP_DB=str(db))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "review_app.cli",
                "--db",
                str(db),
                "serve",
                "--port",
                str(self.port),
                *(["--public-url", public_url] if public_url else []),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the app did not start on {self.url}")

    def link(self, token: str) -> str:
        return f"{self.url}/?token={token}"

    def stop(self) -> None:
        """Kill the command and its Streamlit child (one process group) outright. A stop signal
        would have both wind down in order, about 0.7 s of CPU a server, which these tests do
        not look at: tests/test_server.py checks that a stop signal stops the server."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield PatientBrowser(launched)
        launched.close()


# Playwright's window size for a context that names none.
DEFAULT_VIEWPORT = {"width": 1280, "height": 720}

# Every wait in these tests is for the app to finish a script run; on a loaded machine a run can
# take many seconds, and a generous limit costs nothing when the page is quick.
PATIENCE_MS = 60_000


class PatientBrowser:
    """The launched browser, whose contexts and pages wait up to PATIENCE_MS by default."""

    def __init__(self, browser):
        self._browser = browser
        self._tabs: dict[str, object] = {}

    def tab(self, viewport: dict | None = None, color_scheme: str = "light", **context_options):
        """A tab to load pages into, at this window size and colour scheme, from a blank page.

        The tab is the module's: the next test asking for one with the same context options
        (a phone's touch screen) gets it again. A new tab is a new renderer process that
        compiles Streamlit's scripts afresh, about 2 s of CPU, where a page loaded into a tab
        that has shown the app before costs under 1 s. Each test's page is still a fresh load
        (a new script session; the app keeps nothing in the browser between loads). A test
        that listens to a page's events or routes its requests opens a context of its own
        instead (those would outlive it here), and no test closes a tab."""
        key = repr(sorted(context_options.items()))
        page = self._tabs.get(key)
        if page is None or page.is_closed():
            page = self.new_context(**context_options).new_page()
            self._tabs[key] = page
        else:
            page.goto("about:blank")
        page.set_viewport_size(viewport or DEFAULT_VIEWPORT)
        page.emulate_media(color_scheme=color_scheme)
        return page

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.set_default_timeout(PATIENCE_MS)
        return context

    def new_page(self, **options):
        page = self._browser.new_page(**options)
        page.context.set_default_timeout(PATIENCE_MS)
        page.set_default_timeout(PATIENCE_MS)
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser") / "workspace.db"


def start_server(db: Path):
    server = AppServer(db)
    try:
        yield server
    finally:
        server.stop()


# review.js holds back a click on a vote button until its pair has been on screen this long
# (SETTLE_MS there), and scrolls a new pair's page to its top in timers that end by setting
# window.__reviewSettled to the pair's slot.
SETTLE_MS = 600

PAIR_SETTLED = f"""() => {{
  const holder = document.querySelector('[class*="st-key-vote-A-"]');
  const match = holder && /st-key-vote-A-(\\d+)/.exec(holder.className);
  return Boolean(match) && window.__reviewSettled === Number(match[1])
    && performance.now() - (window.__reviewShownAt || 0) >= {SETTLE_MS};
}}"""


def wait_for_pair(page, timeout: float = PATIENCE_MS) -> None:
    """Wait until the review screen shows a pair (the real buttons, not the skeleton) and is
    ready for a click: the page's script has scrolled the pair to its top for the last time
    and the pair's settle time has passed. On a loaded machine those timers run seconds after
    the buttons are drawn; a test that scrolled to a button and clicked its place before them
    clicked whatever the late scroll had put there instead."""
    page.get_by_role("button", name="A is better").wait_for(timeout=timeout)
    wait_idle(page, timeout)
    page.wait_for_function(PAIR_SETTLED, timeout=timeout)


def photograph(page, name: str, **options) -> None:
    """Keep a picture of the page as REVIEW_APP_SCREENSHOTS/<name> when that variable names a
    folder, for a person to look at. Without it no picture is taken: the tests' checks read the
    page itself, and a tall picture costs a second or two of CPU."""
    folder = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), **options)


def wait_idle(page, timeout: float = PATIENCE_MS) -> None:
    """Wait until the app's script run has finished (the whole page is drawn)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        timeout=timeout
    )


def wait_drawn(page) -> None:
    """Wait until the script run is over and what draws after it is drawn: the widgets in place
    of their placeholders, the charts and the tables."""
    wait_idle(page)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stSkeleton"]')
        && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
          .every((chart) => chart.querySelector('svg, canvas'))
        && [...document.querySelectorAll('[data-testid="stDataFrame"]')]
          .every((frame) => !frame.checkVisibility()
            || (frame.querySelector('canvas') && frame.querySelector('table')))"""
    )
    # The tables and charts paint on the next frames.
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


def done_count(page) -> int:
    """The review screen's "N done · M left" counter: N."""
    text = page.get_by_text(COUNTER).inner_text()
    return int(text.split()[0])


COUNTER = re.compile(r"^\d+ done · \d+ left$")


def wait_count_moves(page, start: int) -> None:
    """Wait until the "N done · M left" counter shows anything but `start`."""
    deadline = time.monotonic() + PATIENCE_MS / 1000
    while done_count(page) == start:
        if time.monotonic() > deadline:
            raise AssertionError(f"the counter stayed at {start}: the click recorded no vote")
        page.wait_for_timeout(100)


def wait_done(page, n: int) -> None:
    """Wait for the counter to reach n and the page to finish drawing the next pair."""
    page.get_by_text(re.compile(rf"^{n} done · \d+ left$")).wait_for(timeout=PATIENCE_MS)
    wait_idle(page)
