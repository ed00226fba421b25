"""One kernel per browser session, a warm spare, a cap and an idle limit: :class:`KernelPool`."""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from kernel.errors import KernelError, KernelLimitError
from kernel.sandbox import SandboxLimits
from kernel.session import KernelSession

if TYPE_CHECKING:
    from kernel.gateway import GatewaySession
    from kernel.gateway_client import GatewayConfig

#: A kernel of the pool: local and sandboxed, or on a Kernel Gateway (the same methods).
AnyKernel = Union[KernelSession, "GatewaySession"]


class KernelPool:
    """Hands each session id its own :class:`KernelSession`, created on first use.

    One spare kernel is kept started in the background so that a new session's first run does
    not wait for a kernel to start. At most ``max_kernels`` kernels run at once, the spare
    included; a spare is only kept while there is room for another session.

    Args:
        max_kernels: The most sessions with a kernel at once.
        idle_timeout: Seconds without use after which :meth:`reap_idle` shuts a kernel down.
        warm_spare: Keep one kernel started ahead of need.
        limits: Resource limits for every kernel.
        session_factory: Builds a session (tests and the CLI may pass their own options).
        session_alive: Tells whether a session id still belongs to a live session (the app asks its
            web server); when the pool is full, the kernels of sessions it says are gone are released
            before a new session is refused. None: every session counts as alive until released.
        limit_hint: The end of the refusal message: how the user raises the limit.
        gateway: Start the kernels on this Kernel Gateway instead of locally (when no
            ``session_factory`` is given).
    """

    def __init__(
        self,
        max_kernels: int = 4,
        idle_timeout: float = 1800,
        warm_spare: bool = True,
        limits: SandboxLimits | None = None,
        session_factory: Callable[[], AnyKernel] | None = None,
        session_alive: Callable[[str], bool] | None = None,
        limit_hint: str = "or create the pool with a higher max_kernels.",
        gateway: GatewayConfig | None = None,
    ) -> None:
        if max_kernels < 1:
            raise KernelError(f"max_kernels must be at least 1, not {max_kernels}; pass 1 or more.")
        self.max_kernels = max_kernels
        self.idle_timeout = idle_timeout
        self.warm_spare = warm_spare
        self.limits = limits or SandboxLimits()
        #: The Kernel Gateway the kernels run on, or None for local kernels.
        self.gateway = gateway
        self._factory = session_factory or self._new_kernel
        self._session_alive = session_alive
        self._limit_hint = limit_hint
        #: Seconds a new session waits for a spare being started before starting its own kernel.
        self.spare_wait = 30.0  # a spare start gives up after its own start timeout (30 s by default)
        self._lock = threading.Lock()
        self._sessions: dict[str, AnyKernel] = {}
        #: Sessions whose kernel is being started, each set when it is ready (or failed).
        self._starting: dict[str, threading.Event] = {}
        self._spare: AnyKernel | None = None
        self._spare_thread: threading.Thread | None = None
        self._closed = False
        atexit.register(self.shutdown_all)
        self._start_spare()

    @property
    def sessions(self) -> list[str]:
        """The ids of the sessions that have a kernel."""
        with self._lock:
            return list(self._sessions)

    def _new_kernel(self) -> AnyKernel:
        if self.gateway is None:
            return KernelSession(limits=self.limits)
        from kernel.gateway import GatewaySession

        return GatewaySession(self.gateway, limits=self.limits)

    def get(self, session_id: str) -> AnyKernel:
        """The kernel of ``session_id``, started (or taken from the spare) on first use.

        Raises:
            KernelLimitError: If ``max_kernels`` sessions already have a kernel.
            KernelStartError: If a new kernel cannot start.
        """
        self.reap_idle()
        if self._full_for(session_id):
            self.reap_dead()  # never refuse a session while a gone session holds a kernel
        while True:
            with self._lock:
                if self._closed:
                    raise KernelError("The kernel pool was shut down; restart the app to run code.")
                session = self._sessions.get(session_id)
                if session is not None:
                    session.last_used = time.monotonic()
                    return session
                starting = self._starting.get(session_id)
                if starting is None:
                    if len(self._sessions) + len(self._starting) >= self.max_kernels:
                        raise KernelLimitError(
                            f"All {self.max_kernels} kernels are in use by other sessions. Close another "
                            f"session, wait until an idle kernel is stopped (after {self.idle_timeout:g} s "
                            f"without use), {self._limit_hint}"
                        )
                    # The slot is reserved; the kernel starts outside the lock, so sessions start in parallel.
                    self._starting[session_id] = threading.Event()
                    break
            starting.wait()  # the same session's other script run is starting its kernel
        try:
            session = self._take_spare() or self._factory()
        except BaseException:
            with self._lock:
                self._starting.pop(session_id).set()
            raise
        session.last_used = time.monotonic()
        with self._lock:
            self._sessions[session_id] = session
            self._starting.pop(session_id).set()
        self._start_spare()
        return session

    def _take_spare(self) -> AnyKernel | None:
        """The warm spare if it is ready and alive (a spare still starting is waited for, within its timeout)."""
        with self._lock:
            thread = self._spare_thread
        if thread is not None:
            thread.join(timeout=self.spare_wait)
        with self._lock:
            session, self._spare = self._spare, None
        if session is not None and not session.alive:
            session.shutdown()
            return None
        return session

    def lease(self, session_id: str) -> KernelLease:
        """A handle whose ``release()`` frees this session's kernel: hand it to the web server's session-end hook."""
        return KernelLease(self, session_id)

    def release(self, session_id: str) -> None:
        """Shut down the kernel of ``session_id`` (for example when the browser session ends)."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.shutdown()
        self._start_spare()

    def reap_dead(self) -> list[str]:
        """Shut down the kernels of sessions that ``session_alive`` says are gone; return their ids."""
        if self._session_alive is None:
            return []
        with self._lock:
            ids = list(self._sessions)
        dead = [sid for sid in ids if not self._alive(sid)]
        for sid in dead:
            self.release(sid)
        return dead

    def _alive(self, session_id: str) -> bool:
        assert self._session_alive is not None
        try:
            return bool(self._session_alive(session_id))
        except Exception:
            return True  # when in doubt, keep the kernel: the idle limit still frees it

    def _full_for(self, session_id: str) -> bool:
        with self._lock:
            known = session_id in self._sessions or session_id in self._starting
            return not known and len(self._sessions) + len(self._starting) >= self.max_kernels

    def reap_idle(self) -> list[str]:
        """Shut down kernels unused for ``idle_timeout`` seconds; return their session ids."""
        limit = time.monotonic() - self.idle_timeout
        with self._lock:
            idle = [sid for sid, session in self._sessions.items() if session.last_used < limit]
            stopped = [self._sessions.pop(sid) for sid in idle]
        for session in stopped:
            session.shutdown()
        return idle

    def shutdown_all(self) -> None:
        """Shut down every kernel, the spare included; the pool then refuses new sessions."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            thread = self._spare_thread
        if thread is not None:
            thread.join(timeout=self.spare_wait)  # never hang the app's exit on a stuck start
        with self._lock:
            spare, self._spare = self._spare, None
        for session in [*sessions, *([spare] if spare else [])]:
            with contextlib.suppress(Exception):
                session.shutdown()
        atexit.unregister(self.shutdown_all)

    def _start_spare(self) -> None:
        """Start a spare kernel in the background if there is none and room for one."""
        with self._lock:
            busy = self._spare_thread is not None and self._spare_thread.is_alive()
            room = len(self._sessions) + len(self._starting) < self.max_kernels
            if self._closed or not self.warm_spare or self._spare is not None or busy or not room:
                return
            self._spare_thread = threading.Thread(target=self._make_spare, name="kernel-spare", daemon=True)
            self._spare_thread.start()

    def _make_spare(self) -> None:
        try:
            spare = self._factory()
        except KernelError:
            return  # get() starts its own kernel and reports the error
        with self._lock:
            # Sessions still starting may be waiting for this very spare: they do not count here.
            keep = not self._closed and self._spare is None and len(self._sessions) < self.max_kernels
            if keep:
                self._spare = spare
        if not keep:
            spare.shutdown()


class KernelLease:
    """One session's claim on a pool: :meth:`release` shuts its kernel down and removes its work folder.

    Args:
        pool: The pool the kernel comes from.
        session_id: The session's key in the pool.
    """

    def __init__(self, pool: KernelPool, session_id: str) -> None:
        self.pool = pool
        self.session_id = session_id

    def release(self) -> None:
        """Free the session's kernel (safe to call more than once, and from any thread)."""
        self.pool.release(self.session_id)
