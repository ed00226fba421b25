"""A kernel on a Jupyter Kernel Gateway or Enterprise Gateway: :class:`GatewaySession`.

It offers what :class:`kernel.session.KernelSession` offers (``execute`` with every output, the time-out
path, ``interrupt``, ``restart``, ``shutdown``, ``alive``, the work folder's files), so the pool, the
code loop, the CLI and the MCP server take either. The local sandbox does not apply: the kernel runs
wherever the gateway runs it, isolated as the gateway isolates it (Enterprise Gateway: a pod per
kernel). Limits the gateway takes per kernel are sent with the start request (``KERNEL_MEMORY_LIMIT``).

Faults: an unreachable gateway or a refused token is a :class:`KernelGatewayError`; a websocket that
drops is reopened once (the gateway replays what it kept for this client), then reported; a kernel the
gateway no longer has (culled when idle, or the gateway restarted) is replaced by a new one on the next
run, and the run's note says that its state is lost.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import PurePosixPath
from types import TracebackType
from typing import Any

from jupyter_client.session import Session

from kernel.errors import KernelDiedError, KernelError, KernelGatewayError, KernelStartError
from kernel.files import DEFAULT_MAX_READ, FileInfo
from kernel.gateway_client import GatewayConfig, GatewayRest, KernelChannels
from kernel.outputs import Execution, OutputCollector
from kernel.remote_files import download, list_remote, setup_code, upload
from kernel.sandbox import SandboxLimits
from kernel.session import RunEnd, run_notes

#: Seconds between checks that the websocket is still open while code runs.
_ALIVE_EVERY = 0.2
#: Seconds between asking the gateway whether it still has the kernel, while code runs or after a pause:
#: a gateway that culls or deletes a kernel does not always close its websocket.
_MODEL_EVERY = 5.0
#: Seconds without use after which a request first checks that the gateway still has the kernel.
_CHECK_AFTER_IDLE = 1.0
#: Seconds to wait for the idle status once the execute reply came.
_IDLE_AFTER_REPLY = 1.0
#: Seconds a file request may take in the kernel.
_FILE_TIMEOUT = 120.0


class GatewaySession:
    """A kernel on a gateway, its work folder there, and the code run in it.

    Use as a context manager, or call :meth:`shutdown`.

    Args:
        config: The gateway, its token and the kernel spec.
        limits: The limits to ask the gateway for (``memory_bytes`` as ``KERNEL_MEMORY_LIMIT``;
            ``workdir_bytes`` caps each upload). The defaults of :class:`SandboxLimits` when None.
        start_timeout: Seconds a kernel start may take until the kernel answers.
        interrupt_grace: Seconds an interrupted run gets to stop before the kernel is restarted.
        max_output_chars: Characters of text output kept per execution (the rest is counted).
        max_image_bytes: Bytes of images kept per execution.

    Raises:
        KernelGatewayError: If the gateway cannot be reached or refuses the token.
        KernelStartError: If the gateway cannot start the kernel.
    """

    #: Code here never runs in the local sandbox (the page and the CLI read these, as for a local kernel).
    sandboxed = False

    def __init__(
        self,
        config: GatewayConfig,
        limits: SandboxLimits | None = None,
        *,
        start_timeout: float = 60.0,
        interrupt_grace: float = 2.0,
        max_output_chars: int = 2_000_000,
        max_image_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.config = config
        self.limits = limits or SandboxLimits()
        self.start_timeout = start_timeout
        self.interrupt_grace = interrupt_grace
        self.max_output_chars = max_output_chars
        self.max_image_bytes = max_image_bytes
        self.sandbox_reason = (
            f"it runs on the Kernel Gateway at {config.where}, isolated as the gateway isolates it"
        )
        self.last_used = time.monotonic()
        #: Seconds the last (re)start took, until the kernel answered.
        self.start_seconds = 0.0
        self.kernel_id = ""
        self._folder = ""
        self._listing: list[FileInfo] = []
        self._used = False  # whether code ran or a file was uploaded (so a lost kernel lost something)
        #: When the kernel last answered a request (monotonic seconds).
        self._last_answer = 0.0
        self._rest = GatewayRest(config)
        self._session = Session(username="workbench")
        self._lock = threading.RLock()
        self._control_lock = threading.Lock()
        self._restart_requested = threading.Event()
        self._stop_requested = threading.Event()
        self._closed = False
        self._channels: KernelChannels | None = None
        try:
            self._start()
        except BaseException:
            self._delete_kernel()
            raise

    # --- public API -------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        """The gateway's address (never the token), for the page and the CLI."""
        return self.config.where

    @property
    def workdir(self) -> PurePosixPath:
        """The kernel's work folder, a path on the gateway's side (not on this machine)."""
        return PurePosixPath(self._folder)

    @property
    def alive(self) -> bool:
        """True while the kernel's websocket is open."""
        channels = self._channels
        return not self._closed and channels is not None and not channels.closed.is_set()

    def execute(self, code: str, timeout: float = 30.0) -> Execution:
        """Run ``code`` and collect every output until it finishes or ``timeout`` seconds pass.

        On time-out the run is interrupted; if it does not stop within ``interrupt_grace`` seconds,
        or the kernel dies, the kernel is restarted and the result says so.

        Raises:
            KernelError: If the session was shut down or ``timeout`` is not positive.
            KernelGatewayError: If the gateway cannot be reached (at the start or during the run).
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
            lost = self._ensure_kernel()
            if lost:
                execution.restarted = True
                notes.append(lost)
            self._used = True
            outcome = self._run(code, timeout, collector)
            notes += run_notes(outcome, execution, timeout, self.limits, self._death())
            if outcome.needs_restart:
                self._restart()
                execution.restarted = True
            execution.note = " ".join(notes)
            collector.finish()
            execution.duration = time.monotonic() - started
            self.last_used = self._last_answer = time.monotonic()
            return execution

    def interrupt(self) -> None:
        """Interrupt the running code, as Ctrl-C would (safe to call from any thread).

        Raises:
            KernelGatewayError: If the gateway cannot be reached.
        """
        if self._closed or not self.kernel_id:
            return
        with self._control_lock:
            self._rest.request("POST", f"/api/kernels/{self.kernel_id}/interrupt", {})

    def restart(self) -> None:
        """Restart the kernel (its state is lost; the work folder is kept).

        A run in progress in another thread stops and reports the restart.
        """
        self._restart_requested.set()
        with self._lock:
            if self._restart_requested.is_set():
                self._check_open()
                self._restart()

    def shutdown(self) -> None:
        """Delete the kernel's work folder and the kernel on the gateway (errors there are ignored)."""
        self._stop_requested.set()
        with self._lock:
            if self._closed:
                return
            if self.alive and self._folder:
                with contextlib.suppress(Exception):
                    self._call(f"import shutil; shutil.rmtree({self._folder!r}, ignore_errors=True)", 10.0)
            self._closed = True
            self._close_channels()
            self._delete_kernel()

    def __enter__(self) -> GatewaySession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.shutdown()

    def save_file(self, name: str, data: bytes) -> PurePosixPath:
        """Write an uploaded file into the work folder (at most ``limits.workdir_bytes``); return its path there.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder.
            WorkdirFullError: If the file is over the cap or does not fit.
            KernelError: If code is running (the kernel reads the file only between runs).
        """
        with self._idle("upload a file"):
            self._used = True
            return PurePosixPath(upload(self._evaluate, name, data, self.limits.workdir_bytes))

    def read_file(self, name: str, max_bytes: int = DEFAULT_MAX_READ) -> bytes:
        """Read a file of the work folder.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder, does not exist or is not a file.
            KernelError: If the file is larger than ``max_bytes``, or code is running.
        """
        with self._idle("download a file"):
            return download(self._evaluate, name, max_bytes)

    def list_files(self, max_files: int = 1000) -> list[FileInfo]:
        """The regular files in the work folder, sorted by name (at most ``max_files``).

        While code runs the kernel cannot answer, so the list of the last time it could is returned.
        """
        try:
            with self._idle("list the files", wait=0.2):
                self._listing = list_remote(self._evaluate, max_files)
        except KernelError:
            if self._closed:
                raise
        return list(self._listing)

    @contextlib.contextmanager
    def _idle(self, action: str, wait: float = 1.0) -> Iterator[None]:
        """Hold the session while the kernel is idle (a running cell would hold up the request until it ends).

        Raises:
            KernelError: If code is still running after ``wait`` seconds, or the session was shut down.
        """
        if not self._lock.acquire(timeout=wait):
            raise KernelError(
                f"The kernel is running code; {action} once the run has ended (or press Interrupt)."
            )
        try:
            self._check_open()
            self._ensure_kernel()
            yield
        finally:
            self._lock.release()

    # --- internals --------------------------------------------------------------------------
    def _run(self, code: str, timeout: float, collector: OutputCollector) -> RunEnd:
        """Send one execute request and read its messages until it ends; return how it ended."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        self._keep_connected()  # a websocket that dropped since the last request is reopened first
        msg_id = self._channels_or_raise().send("shell", "execute_request", content)
        now = time.monotonic()
        deadline, interrupted_at, replied_at, next_alive = now + timeout, 0.0, 0.0, now + _ALIVE_EVERY
        next_model = now + _MODEL_EVERY
        while True:
            now = time.monotonic()
            if self._stop_requested.is_set():
                return RunEnd.STOPPED
            if self._restart_requested.is_set():
                return RunEnd.RESTART
            if now >= next_alive:
                self._keep_connected(check_model=now >= next_model)
                next_model = next_model + _MODEL_EVERY if now >= next_model else next_model
                next_alive = now + _ALIVE_EVERY
            if replied_at and now >= replied_at + _IDLE_AFTER_REPLY:
                return RunEnd.DONE
            if interrupted_at and now >= interrupted_at + self.interrupt_grace:
                return RunEnd.UNRESPONSIVE
            if not interrupted_at and now >= deadline:
                collector.execution.timed_out = True
                interrupted_at = now
                self.interrupt()
            channels = self._channels_or_raise()
            if not replied_at:
                with contextlib.suppress(queue.Empty):
                    if channels.get("shell", 0).get("parent_header", {}).get("msg_id") == msg_id:
                        replied_at = now
            try:
                msg = channels.get("iopub", 0.05)
            except queue.Empty:
                continue
            state = msg.get("content", {}).get("execution_state") if msg["msg_type"] == "status" else None
            if state in ("restarting", "dead"):  # the gateway saw the kernel die, whatever it ran
                return RunEnd.DIED
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if state is None:
                collector.add(msg)
            elif state == "idle":
                return RunEnd.DONE

    def _call(self, code: str, timeout: float) -> str:
        """Run app code (no history, the user's outputs untouched) and return what it printed.

        Raises:
            KernelError: If it raised, or did not end within ``timeout`` seconds (it is then interrupted).
        """
        try:
            return self._channels_or_raise().run_quietly(code, timeout)
        except TimeoutError:
            with contextlib.suppress(KernelError):
                self.interrupt()
            raise KernelError(
                f"The kernel on the gateway did not answer within {timeout:g} s (busy, or the connection was "
                "lost); wait for the running code or press Interrupt, then try again."
            ) from None

    def _evaluate(self, expression: str) -> str:
        """The ``text/plain`` of ``expression`` evaluated in the kernel (for the files).

        Raises:
            KernelError: If it raised, or no reply came within the file time-out (the kernel is then interrupted).
        """
        try:
            text = self._channels_or_raise().evaluate(expression, _FILE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(KernelError):
                self.interrupt()
            raise KernelError(
                f"The kernel on the gateway did not answer a file request within {_FILE_TIMEOUT:g} s (busy, or "
                "the connection was lost); wait for the running code or press Interrupt, then try again."
            ) from None
        self._last_answer = time.monotonic()
        return text

    def _start(self, folder: str = "") -> None:
        """Ask the gateway for a kernel, open its websocket and wait until it answers.

        Args:
            folder: The work folder to go into (after a restart), or "" for a new one.
        """
        started = time.monotonic()
        env = {"KERNEL_MEMORY_LIMIT": str(self.limits.memory_bytes),
               "KERNEL_LAUNCH_TIMEOUT": str(int(self.start_timeout)), **self.config.env}  # fmt: skip
        body: dict[str, Any] = {"env": env}
        if self.config.kernel_name:
            body["name"] = self.config.kernel_name
        model = self._rest.request("POST", "/api/kernels", body)
        if not isinstance(model, dict) or "id" not in model:
            raise KernelStartError(
                f"The Kernel Gateway at {self.config.where} did not start a kernel (it answered {model!r}). "
                "Check WORKBENCH_KERNEL_GATEWAY_KERNEL against its kernel specs."
            )
        self.kernel_id = str(model["id"])
        self._connect()
        self._folder = self._call(setup_code(folder), self.start_timeout).strip()
        self._last_answer = time.monotonic()
        self.start_seconds = time.monotonic() - started

    def _connect(self) -> None:
        """Open the kernel's websocket and wait until the kernel answers."""
        self._close_channels()
        self._channels = KernelChannels(self._rest, self.kernel_id, self._session, self.start_timeout)
        reason = self._channels.wait_ready(self.start_timeout)
        if reason:
            raise KernelStartError(
                f"The kernel on the Kernel Gateway at {self.config.where} did not answer within "
                f"{self.start_timeout:g} s ({reason}). Check the gateway's log, then try again."
            )

    def _keep_connected(self, check_model: bool = False) -> None:
        """During a run: reopen a dropped websocket once; report if that fails or the kernel is gone.

        Args:
            check_model: Also ask the gateway whether it still has the kernel, even with the websocket open.

        Raises:
            KernelGatewayError: If the gateway cannot be reached, lost the kernel, or refuses the websocket.
        """
        channels = self._channels
        if channels is None or not (channels.closed.is_set() or check_model):
            return
        dropped = f"The connection to the kernel on the Kernel Gateway at {self.config.where} dropped during the run"
        try:
            known = self._rest.request("GET", f"/api/kernels/{self.kernel_id}") is not None
            if not known:
                raise KernelGatewayError(
                    f"{dropped}: the gateway no longer has this session's kernel (it stops idle kernels, or "
                    "was restarted), so its variables and files are gone. Run the code again to start a new kernel."
                )
            if not channels.closed.is_set():
                return
            self._connect()
        except KernelError as error:
            self._close_channels()
            reason = channels.close_reason or "closed"
            raise KernelGatewayError(
                str(error)
                if str(error).startswith(dropped)
                else f"{dropped} ({reason}), and reconnecting failed: {error}"
            ) from None

    def _ensure_kernel(self) -> str:
        """Before a request: reconnect, or start a new kernel if the gateway lost ours; return a note if state was lost.

        After a pause the gateway is asked whether it still has the kernel: one that culls or deletes a
        kernel does not always close its websocket.

        Raises:
            KernelGatewayError: If the gateway cannot be reached or refuses the websocket.
        """
        channels = self._channels
        open_now = channels is not None and not channels.closed.is_set()
        if open_now and time.monotonic() - self._last_answer < _CHECK_AFTER_IDLE:
            return ""
        known = (
            bool(self.kernel_id) and self._rest.request("GET", f"/api/kernels/{self.kernel_id}") is not None
        )
        if known and open_now:
            return ""
        self._close_channels()
        if known:
            self._connect()
            return ""
        self._start()
        if not self._used:  # a spare kernel culled before its session used it: nothing was lost
            return ""
        return (
            f"The Kernel Gateway at {self.config.where} no longer had this session's kernel (it stops idle "
            "kernels, or was restarted), so a new kernel was started: variables, imports and the files of "
            "the old work folder are gone."
        )

    def _restart(self) -> None:
        """Replace the kernel by a new one in the same work folder; the old one is deleted in the background.

        A new kernel rather than the gateway's ``/restart``: that one first asks the old kernel to shut
        down and waits up to 5 s (jupyter_server's ``shutdown_wait_time``) when it is stuck, the very case
        that needs a restart.
        """
        self._restart_requested.clear()
        old = self.kernel_id
        try:
            self._close_channels()
            self._start(self._folder)
        except KernelError as error:
            raise KernelDiedError(
                f"The kernel stopped and could not be restarted: {error} Start a new session."
            ) from error
        finally:
            if old and old != self.kernel_id:
                threading.Thread(target=self._delete, args=(old,), name="gateway-delete", daemon=True).start()

    def _death(self) -> str:
        return "died on the gateway (for example out of its memory limit)"

    def _channels_or_raise(self) -> KernelChannels:
        if self._channels is None:
            raise KernelGatewayError(
                f"This session has no connection to the Kernel Gateway at {self.config.where}; try again."
            )
        return self._channels

    def _check_open(self) -> None:
        if self._closed:
            raise KernelError("This kernel session was shut down; start a new session to run code.")

    def _close_channels(self) -> None:
        if self._channels is not None:
            self._channels.close()
            self._channels = None

    def _delete_kernel(self) -> None:
        self._close_channels()
        if self.kernel_id:
            self._delete(self.kernel_id)

    def _delete(self, kernel_id: str) -> None:
        """Delete a kernel on the gateway (errors ignored: it may be gone already)."""
        with contextlib.suppress(KernelError):  # short: the app's exit waits for it
            self._rest.request("DELETE", f"/api/kernels/{kernel_id}", timeout=5.0)
