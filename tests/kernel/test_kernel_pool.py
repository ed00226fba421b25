"""KernelPool: one kernel per session, a warm spare, a cap, idle reaping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kernel import KernelPool, KernelSession
from kernel.errors import KernelLimitError
from tests.kernel.conftest import assert_usable

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


class Recorder:
    """A session factory that remembers in which thread each session was started."""

    def __init__(self) -> None:
        self.threads: dict[int, str] = {}
        self.sessions: list[KernelSession] = []

    def __call__(self) -> KernelSession:
        session = KernelSession(sandbox=True)
        self.threads[id(session)] = threading.current_thread().name
        self.sessions.append(session)
        return session


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pool(recorder: Recorder) -> Iterator[KernelPool]:
    pool = KernelPool(max_kernels=2, idle_timeout=600, session_factory=recorder)
    yield pool
    pool.shutdown_all()


def wait_for_spare(recorder: Recorder, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(recorder.threads) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # the spare is stored just after the factory returns


def test_first_use_takes_the_warm_spare_which_outlives_its_thread(
    pool: KernelPool, recorder: Recorder
) -> None:
    wait_for_spare(recorder, 1)
    started = time.monotonic()
    session = pool.get("alice")
    assert time.monotonic() - started < 0.5
    assert recorder.threads[id(session)] == "kernel-spare"
    # The spare's thread has ended: its kernel must not have died with it (PR_SET_PDEATHSIG).
    assert session.alive
    assert_usable(session)
    assert pool.get("alice") is session
    assert pool.sessions == ["alice"]


def test_sessions_are_isolated_and_capped(pool: KernelPool, recorder: Recorder) -> None:
    alice = pool.get("alice")
    bob = pool.get("bob")
    assert alice is not bob
    alice.execute("secret = 1\nopen('alice.txt', 'w').write('a')")
    assert bob.execute("secret").error is not None
    assert not (bob.workdir / "alice.txt").exists()
    with pytest.raises(KernelLimitError, match="All 2 kernels are in use") as raised:
        pool.get("carol")
    assert "Close another session" in str(raised.value)
    time.sleep(0.5)
    assert len(recorder.threads) == 2  # no spare beyond the cap
    pool.release("alice")
    assert not alice.alive
    assert_usable(pool.get("carol"))
    assert sorted(pool.sessions) == ["bob", "carol"]


def test_idle_sessions_are_reaped(recorder: Recorder) -> None:
    pool = KernelPool(max_kernels=2, idle_timeout=0.5, warm_spare=False, session_factory=recorder)
    try:
        session = pool.get("idle")
        assert pool.reap_idle() == []
        time.sleep(0.7)
        assert pool.reap_idle() == ["idle"]
        assert not session.alive and pool.sessions == []
    finally:
        pool.shutdown_all()


def test_shutdown_all_stops_every_kernel_and_the_spare(recorder: Recorder) -> None:
    pool = KernelPool(max_kernels=3, session_factory=recorder)
    first = pool.get("one")
    wait_for_spare(recorder, 2)
    pool.shutdown_all()
    assert len(recorder.sessions) == 2 and not any(session.alive for session in recorder.sessions)
    assert not first.workdir.exists()
    assert pool.sessions == []
    with pytest.raises(Exception, match="shut down"):
        pool.get("two")
