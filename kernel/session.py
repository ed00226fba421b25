"""One kernel and the code it runs: :class:`KernelSession`.

``execute`` never blocks for long: it polls IOPub in short slices and, between slices, checks
the wall clock, whether the kernel process is still alive, and whether another thread asked for
a restart or a shutdown. Only messages whose parent is this execution's request are kept.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient

from kernel.errors import KernelDiedError, KernelError, KernelStartError
from kernel.files import DEFAULT_MAX_READ, FileInfo, folder_usage, list_files, read_file, save_upload
from kernel.folders import SessionFolders, prepare_folders, read_tail
from kernel.launcher import Launcher
from kernel.outputs import STATE_LOST, Execution, OutputCollector
from kernel.processes import SandboxProcess, kernel_pid, limits_problem, sandbox_processes
from kernel.sandbox import SandboxLimits, make_manager, sandbox_available, sandbox_owner

#: Seconds between liveness checks of the kernel process while code runs.
_ALIVE_EVERY = 0.2
#: Seconds between usage checks of a work folder that no tmpfs caps.
_USAGE_EVERY = 1.0
#: Seconds to wait for the idle status once the execute reply came (IOPub may drop it).
_IDLE_AFTER_REPLY = 1.0
#: The largest IOPub message the app accepts (an image, a long stream chunk), in bytes.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
#: Control characters other than tab and newline, taken out of the kernel's log before it is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RunEnd(str, Enum):
    """How one execute request ended (the loop in ``KernelSession._run`` returns one)."""

    DONE = "done"  # the code finished (or was interrupted at its time limit and then stopped)
    WORKDIR_FULL = "workdir_full"  # interrupted because the work folder went over its cap
    UNRESPONSIVE = "unresponsive"  # interrupted but did not stop: the kernel must be restarted
    DIED = "died"  # the kernel process exited
    RESTART = "restart"  # another thread asked for a restart
    STOPPED = "stopped"  # the session was shut down

    @property
    def needs_restart(self) -> bool:
        """Whether the kernel must be restarted after a run that ended this way."""
        return self in (RunEnd.UNRESPONSIVE, RunEnd.DIED, RunEnd.RESTART)


def run_notes(
    outcome: RunEnd, execution: Execution, timeout: float, limits: SandboxLimits, death: str
) -> list[str]:
    """The sentences that tell how a run ended, for ``Execution.note`` (none for a plain finish).

    Args:
        outcome: How the run ended.
        execution: The run (``timed_out`` is read).
        timeout: The run's time limit, in seconds.
        limits: The kernel's limits (the work folder's cap is named).
        death: How the kernel ended, as words after "The kernel" ("crashed (SIGSEGV)").
    """
    mib = limits.workdir_bytes // (1024 * 1024)
    return {
        RunEnd.DONE: [f"The run was interrupted because it exceeded the {timeout:g} s time limit."]
        if execution.timed_out
        else [],
        RunEnd.WORKDIR_FULL: [
            f"The run was interrupted because the work folder went over its cap of {mib} MiB "
            f"or {limits.workdir_files} files; delete files to free space."
        ],
        RunEnd.UNRESPONSIVE: [
            "The run was interrupted "
            + (f"after the {timeout:g} s time limit " if execution.timed_out else "")
            + f"but did not stop, so the kernel was restarted: {STATE_LOST}."
        ],
        RunEnd.DIED: [f"The kernel {death} and was restarted, so {STATE_LOST}."],
        RunEnd.RESTART: [f"The kernel was restarted on request, so {STATE_LOST}."],
        RunEnd.STOPPED: ["The kernel was shut down while the code ran."],
    }[outcome]


class KernelSession:
    """A sandboxed IPython kernel, its work folder, and the code run in it.

    Use as a context manager, or call :meth:`shutdown`.

    Args:
        workdir: The folder the code runs in (bound read-write into the sandbox). None creates
            a fresh folder owned by the session, size-capped and deleted at shutdown.
        limits: Resource limits; the defaults of :class:`SandboxLimits` when None.
        sandbox: True requires bubblewrap, False runs the kernel NOT sandboxed, None (default)
            uses bubblewrap when it works here.
        start_timeout: Seconds each step of a kernel start may take (the launch, then the first
            answer); a step that takes longer is abandoned and the kernel's processes killed.
        interrupt_grace: Seconds an interrupted run gets to stop before the kernel is restarted.
        max_output_chars: Characters of text output kept per execution (the rest is counted).
        max_image_bytes: Bytes of images kept per execution.

    Raises:
        KernelStartError: If the kernel (or the sandbox, when required) cannot start.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        limits: SandboxLimits | None = None,
        *,
        sandbox: bool | None = None,
        start_timeout: float = 30.0,
        interrupt_grace: float = 2.0,
        max_output_chars: int = 2_000_000,
        max_image_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        available, reason = sandbox_available()
        if sandbox and not available:
            raise KernelStartError(
                f"The sandbox is required but cannot run: {reason}. Install bubblewrap and allow "
                "unprivileged user namespaces, or pass sandbox=None to run without it where it is missing."
            )
        self.limits = limits or SandboxLimits()
        self.sandboxed: bool = available if sandbox is None else sandbox
        #: Why the kernel is NOT sandboxed ("" when it is), for the page and the CLI.
        self.sandbox_reason = "" if self.sandboxed else (reason if not available else "sandbox=False")
        self.start_timeout = start_timeout
        self.interrupt_grace = interrupt_grace
        self.max_output_chars = max_output_chars
        self.max_image_bytes = max_image_bytes
        self.last_used = time.monotonic()
        #: Seconds the last (re)start took, until the kernel answered.
        self.start_seconds = 0.0
        self._lock = threading.RLock()  # one execute/restart/shutdown at a time
        self._control_lock = threading.Lock()  # interrupts may come from another thread
        self._restart_requested = threading.Event()
        self._stop_requested = threading.Event()
        self._closed = False
        self._client: BlockingKernelClient | None = None
        self._context: zmq.Context[Any] | None = None
        self._launcher = Launcher()
        owner = sandbox_owner() if self.sandboxed else None
        self._folders: SessionFolders = prepare_folders(
            workdir, owner, self.limits.workdir_bytes, self.limits.workdir_files
        )
        try:
            self._manager, self._start_kwargs = make_manager(
                self._folders, self.limits, self.sandboxed, owner
            )
            self._start()
        except BaseException:
            if "_manager" in self.__dict__:
                with contextlib.suppress(Exception):
                    self._manager.shutdown_kernel(now=True)
            self._release_resources()
            raise

    # --- public API -------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """The folder the code runs in (the same path inside and outside the sandbox)."""
        return self._folders.work

    @property
    def connection_file(self) -> Path:
        """The kernel's connection file (e.g. for ``jupyter console --existing``, as root)."""
        return Path(self._manager.connection_file)

    @property
    def alive(self) -> bool:
        """True while the kernel process runs."""
        return not self._closed and bool(self._manager.is_alive())

    def execute(self, code: str, timeout: float = 30.0) -> Execution:
        """Run ``code`` and collect every output until it finishes or ``timeout`` seconds pass.

        On time-out the run is interrupted; if it does not stop within ``interrupt_grace``
        seconds, or the kernel dies, the kernel is restarted and the result says so.

        Args:
            code: Python (IPython) source.
            timeout: Wall-clock limit in seconds.

        Raises:
            KernelError: If the session was shut down or ``timeout`` is not positive.
            KernelDiedError: If the kernel died and could not be restarted.
        """
        if not timeout > 0:
            raise KernelError(
                f"The time limit must be a positive number of seconds, not {timeout!r}; pass e.g. timeout=30."
            )
        with self._lock:
            self._check_open()
            started = time.monotonic()
            execution = Execution(code=code)
            collector = OutputCollector(execution, self.max_output_chars, self.max_image_bytes)
            notes: list[str] = []
            if not self._manager.is_alive():
                self._restart()
                execution.restarted = True
                notes.append(f"The kernel had stopped since the last run and was restarted, so {STATE_LOST}.")
            outcome = self._run(code, timeout, collector)
            notes += run_notes(outcome, execution, timeout, self.limits, self._exit_description())
            if not outcome.needs_restart and outcome is not RunEnd.STOPPED and self._process_flood():
                notes.append(
                    f"The processes and threads it left running used up the limit of "
                    f"{self.limits.processes}, so the kernel was restarted: {STATE_LOST}."
                )
                outcome = RunEnd.RESTART
            if outcome.needs_restart:
                self._restart()
                execution.restarted = True
            execution.note = " ".join(notes)
            collector.finish()
            execution.duration = time.monotonic() - started
            self.last_used = time.monotonic()
            return execution

    def interrupt(self) -> None:
        """Interrupt the running code, as Ctrl-C would (safe to call from any thread)."""
        if self._closed:
            return
        with self._control_lock:
            self._manager.interrupt_kernel()

    def restart(self) -> None:
        """Restart the kernel (its state is lost; the work folder is kept).

        A run in progress in another thread stops and reports the restart.
        """
        self._restart_requested.set()
        with self._lock:
            if self._restart_requested.is_set():  # no run took the request over
                self._check_open()
                self._restart()

    def shutdown(self) -> None:
        """Stop the kernel and delete the session's folders (a given work folder is kept)."""
        self._stop_requested.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._close_client()
                with contextlib.suppress(Exception):
                    self._manager.shutdown_kernel(now=not self._manager.is_alive())
            finally:
                self._release_resources()

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.shutdown()

    def save_file(self, name: str, data: bytes) -> Path:
        """Write an uploaded file into the work folder (replacing one of the same name); return its path.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder.
            WorkdirFullError: If the work folder has no room for ``data``.
        """
        return save_upload(self.workdir, name, data)

    def read_file(self, name: str, max_bytes: int = DEFAULT_MAX_READ) -> bytes:
        """Read a file of the work folder.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder, does not exist or is not a file.
            KernelError: If the file is larger than ``max_bytes``.
        """
        return read_file(self.workdir, name, max_bytes)

    def list_files(self, max_files: int = 1000) -> list[FileInfo]:
        """The regular files in the work folder (symbolic links skipped), sorted by name."""
        return list_files(self.workdir, max_files)

    def processes(self) -> list[SandboxProcess]:
        """The processes inside the sandbox, kernel included (empty when not sandboxed)."""
        process = getattr(self._manager.provisioner, "process", None)
        if not self.sandboxed or process is None or self._closed:
            return []
        return sandbox_processes(process.pid)

    def kernel_log(self, max_bytes: int = 2000) -> str:
        """The end of the kernel process's own output (bubblewrap errors, crash messages).

        Read from the descriptor the app created for it, never by path: the kernel can put only
        what it printed itself in there (control characters are taken out).
        """
        fd = self.__dict__.get("_start_kwargs", {}).get("stdout")
        try:
            tail = read_tail(fd, max_bytes) if isinstance(fd, int) else b""
        except OSError:
            return ""
        return _CONTROL.sub("", tail.decode("utf-8", "replace")).strip()

    # --- internals --------------------------------------------------------------------------
    def _run(self, code: str, timeout: float, collector: OutputCollector) -> RunEnd:
        """Send one execute request and poll until it ends; return how it ended."""
        assert self._client is not None
        client = self._client
        msg_id = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        now = time.monotonic()
        deadline, interrupted_at, over_cap = now + timeout, 0.0, False
        next_alive, next_usage = now + _ALIVE_EVERY, now + _USAGE_EVERY
        check_usage = self._folders.owns_work and not self._folders.size_capped
        replied_at = 0.0
        while True:
            now = time.monotonic()
            if self._stop_requested.is_set():
                return RunEnd.STOPPED
            if self._restart_requested.is_set():
                return RunEnd.RESTART
            if now >= next_alive:
                if not self._manager.is_alive():
                    return RunEnd.DIED
                next_alive = now + _ALIVE_EVERY
            if replied_at and now >= replied_at + _IDLE_AFTER_REPLY:
                return RunEnd.WORKDIR_FULL if over_cap else RunEnd.DONE  # the idle status was dropped
            if interrupted_at and now >= interrupted_at + self.interrupt_grace:
                return RunEnd.UNRESPONSIVE
            if not interrupted_at and now >= deadline:
                collector.execution.timed_out = True
                interrupted_at = now
                self.interrupt()
            if check_usage and not interrupted_at and now >= next_usage:
                size, count = folder_usage(self.workdir, self.limits.workdir_files + 1)
                if size > self.limits.workdir_bytes or count > self.limits.workdir_files:
                    interrupted_at, over_cap = now, True
                    self.interrupt()
                next_usage = now + _USAGE_EVERY
            if not replied_at:
                with contextlib.suppress(queue.Empty):
                    reply = client.get_shell_msg(timeout=0)
                    if reply.get("parent_header", {}).get("msg_id") == msg_id:
                        replied_at = now
            try:
                msg = client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] != "status":
                collector.add(msg)
            elif msg["content"].get("execution_state") == "idle":
                if not replied_at:
                    self._discard_reply(client, msg_id)
                return RunEnd.WORKDIR_FULL if over_cap else RunEnd.DONE

    @staticmethod
    def _discard_reply(client: BlockingKernelClient, msg_id: str) -> None:
        """Read the execute reply (sent before the idle status) so replies do not pile up."""
        with contextlib.suppress(queue.Empty):
            for _ in range(10):
                if client.get_shell_msg(timeout=0.5).get("parent_header", {}).get("msg_id") == msg_id:
                    return

    def _start(self) -> None:
        """Start the kernel process and connect a client to it."""
        started = time.monotonic()
        self._launch(lambda: self._manager.start_kernel(**self._start_kwargs))
        self._connect()
        self.start_seconds = time.monotonic() - started

    def _launch(self, start: Callable[[], object]) -> None:
        """Run ``start`` in this session's launcher thread, abandoning it after the start timeout."""
        try:
            self._launcher.run(start, timeout=self.start_timeout)
        except TimeoutError:
            self._kill_kernel()
            self._launcher.close()
            self._launcher = Launcher()  # the old thread may stay stuck; it is a daemon
            raise KernelStartError(
                f"The kernel did not start within {self.start_timeout:g} s and was abandoned. "
                "Try again; if it keeps happening, the machine is overloaded or the sandbox setup broken."
            ) from None
        except Exception as error:
            raise KernelStartError(
                f"The kernel could not be launched: {error}. Check that bubblewrap and ipykernel "
                "are installed, or run without the sandbox."
            ) from error

    def _kill_kernel(self) -> None:
        """SIGKILL the kernel's process group (bwrap and the whole sandbox with it), if it exists."""
        process = getattr(self._manager.provisioner, "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

    def _check_limits(self) -> None:
        """Read the running kernel's limits from outside; kill it if any is not in place."""
        process = getattr(self._manager.provisioner, "process", None)
        if process is None:
            return
        pid = kernel_pid(process.pid) if self.sandboxed else process.pid
        expected = self.limits.rlimits(with_nproc=self.sandboxed)
        problem = limits_problem(pid, expected) if pid is not None else "its process was not found"
        if problem:
            self._kill_kernel()
            raise KernelStartError(
                f"The kernel started without its resource limits ({problem}), so it was stopped. "
                "Restart the kernel; if it keeps happening, delete files in the work folder that "
                "shadow Python modules (resource.py, site.py, ...)."
            )

    def _connect(self) -> None:
        context: zmq.Context[Any] = zmq.Context()
        # Bound what a flood of output can queue in the app: 8 messages of at most 32 MiB. A
        # bigger message drops the connection (ZeroMQ reconnects); the reply on the shell
        # channel, which is never dropped, still tells when the run ended.
        context.setsockopt(zmq.RCVHWM, 8)
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        client = self._manager.client(context=context)
        client.start_channels()
        self._context, self._client = context, client
        try:
            client.wait_for_ready(timeout=self.start_timeout)
        except RuntimeError as error:
            self._kill_kernel()
            log = self.kernel_log()
            raise KernelStartError(
                f"The kernel did not answer within {self.start_timeout:g} s ({error}). "
                f"Its output ends with: {log or '(empty)'}. Check the sandbox setup, or run without it."
            ) from error
        self._check_limits()

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop_channels()
            self._client = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def _restart(self) -> None:
        """Kill the whole sandbox (its PID namespace with it) and start a fresh kernel."""
        self._restart_requested.clear()
        self._close_client()
        try:
            with self._control_lock:
                self._launch(lambda: self._manager.restart_kernel(now=True))
            started = time.monotonic()
            self._connect()
            self.start_seconds = time.monotonic() - started
        except Exception as error:
            raise KernelDiedError(
                f"The kernel stopped and could not be restarted: {error}. Start a new session."
            ) from error

    def _exit_description(self) -> str:
        """How the kernel process ended, in words ("crashed with a segmentation fault")."""
        process = getattr(self._manager.provisioner, "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "died"
        number = -code if code < 0 else code - 128 if self.sandboxed and code > 128 else 0
        if number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGABRT):
            return f"crashed ({signal.Signals(number).name})"
        if number == signal.SIGXCPU:
            return f"used up its CPU time limit of {self.limits.cpu_seconds} s"
        if number == signal.SIGKILL:
            return "was killed (SIGKILL, for example out of memory)"
        if number > 0:
            return f"died from signal {number}"
        return f"exited with code {code}"

    def _process_flood(self) -> bool:
        """True if the processes and threads left running use most of the budget (a fork bomb)."""
        tasks = sum(p.threads for p in self.processes() if p.ns_pid != 1 and p.state != "Z")
        return tasks >= self.limits.processes * 3 // 4

    def _check_open(self) -> None:
        if self._closed:
            raise KernelError("This kernel session was shut down; start a new session to run code.")

    def _release_resources(self) -> None:
        self._close_client()
        log = self.__dict__.get("_start_kwargs", {}).pop("stdout", None)
        if isinstance(log, int):
            with contextlib.suppress(OSError):
                os.close(log)
        self._launcher.close()
        self._folders.cleanup()
