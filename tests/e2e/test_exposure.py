"""Safe to start: the README's script listens on loopback only, another address needs a password,
and the password gate stands before every page (a real server, a socket, a browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.streamlit_server import NAV_LINKS, ROOT, free_port, launch_streamlit

pytestmark = pytest.mark.browser

PASSWORD = "a long test secret"


def own_non_loopback_address() -> str:
    """An address of this machine other than loopback (``hostname -I``)."""
    output = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
    for address in output.split():
        if "." in address and not address.startswith("127."):
            return address
    pytest.skip("this machine has no IPv4 address besides loopback")


def reachable(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_PASSWORD", "WORKBENCH_NO_AUTH")}
    # The test environment is set up already; the script must not install into it.
    env.update(WORKBENCH_SKIP_SETUP="1", WORKBENCH_VENV=str(Path(sys.executable).parents[1]))
    env.update(extra)
    return env


@contextmanager
def run_app_script(log: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start ``scripts/run-app.sh`` as the README says, on a free port; stop it afterwards."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            ["scripts/run-app.sh", "--port", str(port), *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=script_env(**env), start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not reachable("127.0.0.1", port) and not reachable(own_non_loopback_address(), port):
            if server.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        time.sleep(0.5)
        yield server, port
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_the_script_listens_on_loopback_only(tmp_path: Path) -> None:
    other = own_non_loopback_address()
    with run_app_script(tmp_path / "server.log") as (server, port):
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        assert reachable("127.0.0.1", port)
        assert not reachable(other, port), f"the app answers on {other}:{port}"
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        local = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")]
        assert local == [f"127.0.0.1:{port}"], local
    assert "Network URL" not in (tmp_path / "server.log").read_text()


def test_another_address_without_a_password_is_refused(tmp_path: Path) -> None:
    with run_app_script(tmp_path / "server.log", "--host", "0.0.0.0") as (server, port):
        assert server.wait(timeout=30) == 2
        assert not reachable("127.0.0.1", port)
    log = (tmp_path / "server.log").read_text()
    assert "no password is set. Set WORKBENCH_PASSWORD" in log and "--no-auth" in log
    # streamlit's own flag cannot go around the check either
    with run_app_script(tmp_path / "flag.log", "--server.address", "0.0.0.0") as (server, _):
        assert server.wait(timeout=30) == 2


def test_another_address_with_a_password_or_no_auth(tmp_path: Path) -> None:
    other = own_non_loopback_address()
    with run_app_script(tmp_path / "pw.log", "--host", other, WORKBENCH_PASSWORD=PASSWORD) as (server, port):
        assert server.poll() is None, (tmp_path / "pw.log").read_text()
        assert reachable(other, port) and not reachable("127.0.0.1", port)
        with urllib.request.urlopen(f"http://{other}:{port}/_stcore/health", timeout=5) as response:
            assert response.status == 200
    with run_app_script(tmp_path / "open.log", "--host", other, "--no-auth") as (server, port):
        assert server.poll() is None and reachable(other, port)
    assert "WARNING: Workbench listens on" in (tmp_path / "open.log").read_text()


def signed_in(page: Any) -> bool:
    """Whether the navigation (the page titles) is shown, which only happens past the gate."""
    links = page.locator(NAV_LINKS).all_inner_texts()
    return any(text.strip().endswith("Code interpreter") for text in links)


def test_the_password_gate_comes_before_every_page(page: Any, tmp_path: Path) -> None:
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_PASSWORD": PASSWORD}
    with launch_streamlit(tmp_path / "server.log", env) as url:
        page.goto(f"{url}/code")  # a deep link on a fresh server: the gate, not the page
        password = page.get_by_label("Password", exact=True)
        password.wait_for(timeout=60_000)
        assert not signed_in(page)
        assert not page.get_by_role("heading", name="Code interpreter").count()
        # Three wrong tries (waiting out the first two lock-outs): locked out for 4 s, long enough for the
        # right password to arrive within it even on a loaded machine.
        for number, lock_s in enumerate((1, 2, 4)):
            password.fill(f"wrong {number}")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text(f"Wrong password. The next try is possible in {lock_s} s.").wait_for()
            if lock_s < 4:
                time.sleep(lock_s + 0.2)
        password.fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Too many wrong passwords").wait_for()  # locked out: not even checked
        assert not signed_in(page)
        time.sleep(4.2)
        password.fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Code interpreter").wait_for(timeout=60_000)
        page.locator(NAV_LINKS).filter(has_text="Code interpreter").wait_for()  # drawn past the gate
        assert signed_in(page)
        assert not page.get_by_label("Password", exact=True).count()
