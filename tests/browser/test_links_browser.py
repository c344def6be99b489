"""A personal link works wherever the app is served: an admin issues one on the Reviewers screen
of a server on another port than 8501, copies it with the code block's copy button, and a fresh
browser opens it on the review screen; then the same through nginx, with TLS and a path prefix,
running the configuration docs/deploy.md shows."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from review_app.services import demo
from review_app.settings import Settings
from review_app.store import Store
from tests.browser.conftest import AppServer, free_port, start_server, wait_for_pair, wait_idle

pytestmark = pytest.mark.browser

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.fixture(scope="module")
def admin(module_workspace) -> str:
    """The demo workspace (a study with pairs to review); the token of its admin."""
    store = Store.open(module_workspace)
    issued = demo.seed_demo(store, Settings.from_env())
    store.close()
    return issued[demo.DEMO_ADMIN].split("token=")[1]


@pytest.fixture(scope="module")
def server(module_workspace, admin):
    yield from start_server(module_workspace)


def issue_link(browser, app_url: str, admin: str, name: str, shot: str | None = None) -> str:
    """As the admin, issue `name` a reviewer link on the Reviewers screen at `app_url` and copy
    it with the copy button of the block that shows it; returns what the clipboard holds."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"],
        ignore_https_errors=True,
    )
    page = context.new_page()
    page.goto(f"{app_url}/people?token={admin}")
    page.get_by_role("heading", name="Reviewers", exact=True).wait_for()
    wait_idle(page)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Name").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Add and issue link").click()
    block = page.locator('[data-testid="stCode"]')
    block.wait_for()
    wait_idle(page)
    block.hover()
    block.get_by_role("button").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == block.inner_text().strip()
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots and shot:
        page.screenshot(path=str(Path(shots) / shot), full_page=True)
    context.close()
    return copied


def open_as_reviewer(browser, link: str) -> str:
    """Open `link` in a fresh browser (no cookie, no session); returns the address the review
    screen ended on once it shows a pair."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, ignore_https_errors=True
    )
    page = context.new_page()
    page.goto(link)
    wait_for_pair(page)
    assert page.get_by_role("heading", level=1, name="Which response is better?").is_visible()
    url = page.url
    context.close()
    return url


def test_a_link_issued_on_another_port_opens_the_review_screen(admin, server, browser):
    assert server.port != 8501
    link = issue_link(browser, server.url, admin, "casey", shot="reviewers-link.png")
    assert link.startswith(f"{server.url}/?token=")
    assert open_as_reviewer(browser, link).startswith(f"{server.url}/review?token=")


# ---- through nginx, with TLS and a path prefix ----


def deploy_config() -> str:
    """The one nginx block of docs/deploy.md."""
    [block] = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.S)
    return block


def swapped(config: str, swaps: dict[str, str]) -> str:
    """`config` with each placeholder replaced; each must be there exactly once, so a change
    to the documented configuration that this test no longer runs fails here."""
    for old, new in swaps.items():
        assert config.count(old) == 1, f"docs/deploy.md's nginx block no longer has {old!r} once"
        config = config.replace(old, new)
    return config


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "proxy.pem", folder / "proxy.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    return cert, key


def answers(url: str) -> bool:
    unverified = ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=1, context=unverified) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def proxy(tmp_path, module_workspace, admin):
    """nginx running docs/deploy.md's configuration on free ports in front of `review-app serve
    --public-url https://127.0.0.1:PORT/review/`; yields that public URL."""
    if NGINX is None:
        pytest.skip("nginx is missing: install Debian's nginx (make proxy-deps)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing: the proxy test makes its TLS certificate with it")
    https_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}/review/"
    app = AppServer(module_workspace, public_url=public_url)
    cert, key = self_signed(tmp_path)
    site = swapped(
        deploy_config(),
        {
            "server 127.0.0.1:8501;": f"server 127.0.0.1:{app.port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
            "/etc/ssl/certs/review.example.com.pem": str(cert),
            "/etc/ssl/private/review.example.com.key": str(key),
        },
    )
    run = tmp_path / "nginx"
    run.mkdir()
    # Everything nginx writes stays in tmp_path; as root its workers would otherwise run as
    # nobody, who cannot enter pytest's private temporary folder.
    (run / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {run}/nginx.pid;\nerror_log {run}/error.log;\nworker_processes 1;\n"
        "events { worker_connections 256; }\nhttp {\n"
        f"access_log {run}/access.log;\n"
        + "".join(
            f"{kind}_temp_path {run}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + site
        + "}\n"
    )
    nginx = subprocess.Popen(
        [NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "error.log")]
        + ["-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        health = f"{public_url}_stcore/health"
        deadline = time.monotonic() + 60
        while not answers(health):
            if nginx.poll() is not None:
                raise RuntimeError(f"nginx stopped: {nginx.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer through nginx at {health}")
            time.sleep(0.2)
        yield public_url.rstrip("/")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        app.stop()


def test_a_link_issued_through_a_proxy_with_a_path_opens_the_review_screen(admin, proxy, browser):
    link = issue_link(browser, proxy, admin, "drew", shot="reviewers-link-proxy.png")
    assert link.startswith(f"{proxy}/?token=")
    assert open_as_reviewer(browser, link).startswith(f"{proxy}/review?token=")
