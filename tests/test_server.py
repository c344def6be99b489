"""`review-app serve` and `demo` as processes: a stop signal to the command stops the Streamlit
server too (the port is free again within 5 s), and the demo's output ends with a working link."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.browser.conftest import free_port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(tmp_path, *argv: str) -> subprocess.Popen:
    env = dict(os.environ, REVIEW_APP_DB=str(tmp_path / "workspace.db"))
    return subprocess.Popen(
        [sys.executable, "-m", "review_app.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) no longer serves anything.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_server_and_frees_the_port(tmp_path, stop):
    port = free_port()
    process = start(tmp_path, "serve", "--port", str(port))
    try:
        assert wait_until(lambda: port_open(port), 60), process.stdout.read()
        [child] = children_of(process.pid)
        process.send_signal(stop)  # the command only, as `kill PID` or a supervisor would
        # Each wait ends at its event; the limits only bound a stop that hangs. A loaded
        # machine can take longer than the child's grace (server.STOP_GRACE) to stop it.
        assert wait_until(lambda: not port_open(port), 30)
        assert process.wait(timeout=30) == 0
        assert wait_until(lambda: not alive(child), 30)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_demo_ends_with_the_export_line_and_a_working_admin_link(tmp_path):
    port = free_port()
    process = start(tmp_path, "demo", "--port", str(port))
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("http://") and lines[-2].startswith("Open the app as demo-admin"):
                break
        link = lines[-1]
        assert (
            lines[-3] == f"For the command line: export REVIEW_APP_DB={tmp_path / 'workspace.db'}"
        )
        assert link.startswith(f"http://127.0.0.1:{port}/?token=")
        assert not any("You can now view" in line or "URL:" in line for line in lines)
        with urllib.request.urlopen(link, timeout=10) as response:  # the app answers the link
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=10)[0]
        assert "http" not in rest  # nothing after the link but the server stopping
        assert not port_open(port)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_listens_on_the_settings_port_under_the_public_urls_path(tmp_path):
    port = free_port()
    public = f"http://127.0.0.1:{port}/team/review"
    env = dict(
        os.environ,
        REVIEW_APP_DB=str(tmp_path / "workspace.db"),
        REVIEW_APP_PORT=str(port),
        REVIEW_APP_PUBLIC_URL=f"{public}/",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "review_app.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("links use"):
                break
        assert lines[0] == f"serving {tmp_path / 'workspace.db'} on {public} (Ctrl+C to stop)"
        assert lines[-1] == f"links use {public}, the public URL"
        with urllib.request.urlopen(f"{public}/_stcore/health", timeout=10) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10)
        assert outside.value.code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
