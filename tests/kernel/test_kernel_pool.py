"""KernelPool: one kernel per session, a warm spare, a cap, idle reaping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kernel import KernelPool, KernelSession
from kernel.errors import KernelLimitError
from tests.kernel.helpers import assert_usable

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
    assert alice is not bob and isinstance(bob, KernelSession)
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
    assert isinstance(first, KernelSession)
    wait_for_spare(recorder, 2)
    pool.shutdown_all()
    assert len(recorder.sessions) == 2 and not any(session.alive for session in recorder.sessions)
    assert not first.workdir.exists()
    assert pool.sessions == []
    with pytest.raises(Exception, match="shut down"):
        pool.get("two")


def test_kernels_follow_their_sessions(recorder: Recorder) -> None:
    """Five sessions one after another, the first two closed before the fourth and fifth (issue 11)."""
    live: set[str] = set()
    pool = KernelPool(
        max_kernels=4, warm_spare=False, session_factory=recorder, session_alive=live.__contains__
    )
    try:
        leases = {}
        for name in ["s1", "s2", "s3"]:
            live.add(name)
            pool.get(name)
            leases[name] = pool.lease(name)
        # s1 ends the way Streamlit ends it: the session-scoped cache calls the lease's release.
        live.discard("s1")
        leases["s1"].release()
        # s2's tab is closed but no hook ran (yet): a full pool must free its kernel before refusing.
        live.discard("s2")
        for name in ["s4", "s5"]:
            live.add(name)
            assert_usable(pool.get(name))
        assert sorted(pool.sessions) == ["s2", "s3", "s4", "s5"]  # s2 still counted: room was left
        live.add("s6")
        assert_usable(pool.get("s6"))  # the pool is full: s2, gone, gives way
        assert sorted(pool.sessions) == ["s3", "s4", "s5", "s6"]
        assert sum(session.alive for session in recorder.sessions) == 4
        stopped = [s for s in recorder.sessions if not s.alive]
        assert len(stopped) == 2 and not any(s.workdir.exists() for s in stopped)
        live.add("s7")
        with pytest.raises(KernelLimitError, match="All 4 kernels are in use") as raised:
            pool.get("s7")  # every kernel belongs to a live session: refused
        assert "higher max_kernels" in str(raised.value)
        leases["s1"].release()  # a second release is harmless
    finally:
        pool.shutdown_all()


def test_the_apps_refusal_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.modes.code_workspace import create_pool

    monkeypatch.setenv("WORKBENCH_MAX_KERNELS", "1")
    pool = create_pool()
    try:
        pool.get("one")
        with pytest.raises(KernelLimitError) as raised:
            pool.get("two")
        message = str(raised.value)
        assert "All 1 kernels are in use" in message
        assert "WORKBENCH_MAX_KERNELS (now 1)" in message and "settings" not in message
    finally:
        pool.shutdown_all()


def test_a_start_that_hangs_blocks_no_other_session() -> None:
    """Issue 24: one session's kernel start must not hold up another's (no pool-wide creation lock)."""
    release, made = threading.Event(), list[object]()

    def factory() -> KernelSession:
        if not made:
            made.append(None)
            release.wait(60)  # the first start hangs (as a start blocked on a planted FIFO did)
        session = KernelSession(sandbox=True)
        made.append(session)
        return session

    pool = KernelPool(max_kernels=3, idle_timeout=600, warm_spare=False, session_factory=factory)
    stuck = threading.Thread(target=pool.get, args=("stuck",), daemon=True)
    try:
        stuck.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert_usable(pool.get("other"))
        assert time.monotonic() - started < 45  # generous: a loaded machine; the stuck start waits 60 s
        assert pool.sessions == ["other"]
    finally:
        release.set()
        stuck.join(60)
        pool.shutdown_all()
