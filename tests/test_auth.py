"""Who may use the app: loopback open, other addresses need a password or --no-auth; the login guard."""

from __future__ import annotations

import pytest

from workbench.auth import Access, LoginGuard, access_for, is_loopback, main, process_guard, whole_seconds


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("", False),  # Streamlit's "every interface"
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.2", False),
        ("example.org", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_loopback_is_open_and_anything_else_needs_a_password_or_no_auth() -> None:
    assert access_for("127.0.0.1", {}).access is Access.OPEN
    refused = access_for("0.0.0.0", {})
    assert refused.access is Access.REFUSED
    assert "WORKBENCH_PASSWORD" in refused.message and "--no-auth" in refused.message
    assert access_for("", {}).access is Access.REFUSED
    assert "all interfaces" in access_for("", {}).message
    assert access_for("0.0.0.0", {"WORKBENCH_PASSWORD": "pw"}).access is Access.PASSWORD
    assert access_for("127.0.0.1", {"WORKBENCH_PASSWORD": "pw"}).access is Access.PASSWORD
    no_auth = access_for("0.0.0.0", {"WORKBENCH_NO_AUTH": "1"})
    assert no_auth.access is Access.NO_AUTH and no_auth.message.startswith("WARNING")
    assert access_for("0.0.0.0", {"WORKBENCH_NO_AUTH": "0"}).access is Access.REFUSED
    assert access_for("0.0.0.0", {"WORKBENCH_PASSWORD": ""}).access is Access.REFUSED


def test_the_start_check_exits_2_on_an_unsafe_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("WORKBENCH_PASSWORD", "WORKBENCH_NO_AUTH"):
        monkeypatch.delenv(name, raising=False)
    assert main(["127.0.0.1"]) == 0
    assert main(["0.0.0.0"]) == 2
    assert "error: Workbench would listen on 0.0.0.0" in capsys.readouterr().err
    monkeypatch.setenv("WORKBENCH_NO_AUTH", "1")
    assert main(["0.0.0.0"]) == 0
    assert "WARNING" in capsys.readouterr().err


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_login_guard_locks_out_for_a_growing_delay_per_client() -> None:
    clock = Clock()
    guard = LoginGuard("correct horse", base_delay=1, max_delay=8, clock=clock)
    assert guard.check("correct horse", "a").ok
    first = guard.check("wrong", "a")
    assert not first.ok and first.wait_s == 1 and "Wrong password" in first.message
    # Locked: even the right password is not checked until the delay has passed.
    locked = guard.check("correct horse", "a")
    assert not locked.ok and "Too many wrong passwords" in locked.message
    assert guard.check("correct horse", "b").ok  # another client is not locked
    clock.now += 1.01
    assert guard.check("wrong", "a").wait_s == 2
    clock.now += 2.01
    assert guard.check("wrong", "a").wait_s == 4
    clock.now += 4.01
    assert guard.check("wrong", "a").wait_s == 8
    clock.now += 8.01
    assert guard.check("wrong", "a").wait_s == 8  # capped
    clock.now += 8.01
    assert guard.check("correct horse", "a").ok
    assert guard.check("wrong", "a").wait_s == 1  # a success resets the count


@pytest.mark.parametrize("attempt", ["", "correct hors", "correct horse ", "CORRECT HORSE", "x" * 10_000])
def test_login_guard_refuses_near_misses(attempt: str) -> None:
    assert not LoginGuard("correct horse").check(attempt).ok


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="WORKBENCH_PASSWORD is empty"):
        LoginGuard("")


def test_a_wait_is_told_in_whole_seconds_rounded_up_never_0() -> None:
    clock = Clock()
    guard = LoginGuard("correct horse", base_delay=1, clock=clock)
    assert guard.check("wrong", "a").message == "Wrong password. The next try is possible in 1 s."
    clock.now += 0.6  # 0.4 s left
    locked = guard.check("correct horse", "a")
    assert locked.message == "Too many wrong passwords: wait 1 s, then try again."
    assert 0 < locked.wait_s < 1
    clock.now += 0.39  # 0.01 s left
    assert "wait 1 s" in guard.check("correct horse", "a").message
    assert [whole_seconds(w) for w in (0.001, 0.5, 1.0, 1.01, 59.2)] == [1, 1, 1, 2, 60]


def test_the_process_has_one_guard_per_password_so_a_lock_out_holds() -> None:
    guard = process_guard("the process secret")
    assert process_guard("the process secret") is guard
    assert not guard.check("wrong", "client").ok
    again = process_guard("the process secret").check("the process secret", "client")
    assert not again.ok and "Too many wrong passwords" in again.message
    assert process_guard("another secret") is not guard
