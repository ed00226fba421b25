"""A session's workspace: its kernel (from a pool or given), its work folder, and every run made in it.

:class:`Workspace` is the part of a code session that needs no model: the kernel indicator,
Interrupt and Restart, uploads and downloads, and the user's own cells. The model's loop
(:class:`workbench.modes.code.CodeSession`) builds on it, so the user's cells and the model's code
share one kernel and one run history.
"""

from __future__ import annotations

import io
import os
import threading
import time
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel import (
    STATE_LOST,
    Execution,
    FileInfo,
    KernelPool,
    list_files,
    read_file,
    sandbox_available,
    save_upload,
)
from workbench.errors import EmptyPromptError, KernelError
from workbench.kernels import gateway_config
from workbench.modes.code_runs import (
    BackgroundRun,
    CodeKernel,
    CodeRun,
    CodeSettings,
    KernelProvider,
    KernelStatus,
    RunSource,
)


class Workspace:
    """One session's kernel, work folder and run history.

    Args:
        kernel: A kernel to use (the caller shuts it down), or None to take one from ``pool``.
        pool: Where the session's kernel comes from (one per ``session_id``).
        session_id: This session's key in ``pool``.
        code_settings: Time-out per run and the model loop's settings.

    Attributes:
        runs: Every run, the model's code and the user's cells, in order.
        code: The settings (``code.timeout`` applies to every run).

    Raises:
        KernelError: If neither a kernel nor a pool is given.
    """

    def __init__(
        self,
        kernel: CodeKernel | None = None,
        *,
        pool: KernelProvider | None = None,
        session_id: str = "default",
        code_settings: CodeSettings | None = None,
    ) -> None:
        if kernel is None and pool is None:
            raise KernelError("A code session needs a kernel or a kernel pool; pass one of them.")
        self.code = code_settings or CodeSettings()
        self.session_id = session_id
        self.runs: list[CodeRun] = []
        self._given = kernel
        self._pool = pool
        self._kernel: CodeKernel | None = kernel
        self._running: BackgroundRun | None = None
        self._lock = threading.Lock()
        #: Sentences for the model's next turn (restarts it did not see), cleared once it was told.
        self._model_notes: list[str] = []
        self._user_notes: list[str] = []
        if kernel is None and pool is not None:
            weakref.finalize(self, pool.release, session_id)  # a dropped browser session frees its kernel

    # --- the kernel ---------------------------------------------------------------------------
    @property
    def kernel(self) -> CodeKernel:
        """The session's kernel, started (or taken from the pool's warm spare) on first use.

        Raises:
            KernelLimitError: If the pool has no room for another kernel.
            KernelStartError: If the kernel cannot start.
        """
        if self._given is not None:
            return self._given
        assert self._pool is not None
        kernel = self._pool.get(self.session_id)
        if self._kernel is not None and kernel is not self._kernel:
            note = (
                "The kernel had been idle too long and was replaced by a new one: variables and imports "
                "from earlier code are gone, and so are the files of the old work folder."
            )
            self._model_notes.append(note)
            self._user_notes.append(note)
        self._kernel = kernel
        return kernel

    @property
    def kernel_started(self) -> bool:
        """Whether the session has a kernel yet."""
        return self._kernel is not None

    @property
    def busy(self) -> bool:
        """Whether code is running now."""
        run = self._running
        return run is not None and not run.done.is_set()

    def status(self) -> KernelStatus:
        """The kernel indicator: its state, and whether it is sandboxed or on a gateway (predicted before it starts)."""
        kernel = self._kernel
        if kernel is None:
            gateway = getattr(getattr(self._pool, "gateway", None), "where", "")
            if gateway:
                return KernelStatus("not started", False, "", gateway=gateway)
            works, reason = sandbox_available()
            return KernelStatus("not started", works, "" if works else reason)
        sandboxed = bool(getattr(kernel, "sandboxed", False))
        reason = str(getattr(kernel, "sandbox_reason", ""))
        state = "busy" if self.busy else "idle" if kernel.alive else "dead"
        return KernelStatus(state, sandboxed, reason, gateway=str(getattr(kernel, "gateway_url", "")))

    def pop_notices(self) -> list[str]:
        """Things the user should hear about the kernel (a replaced idle kernel), each returned once."""
        notes, self._user_notes = self._user_notes, []
        return notes

    def interrupt(self) -> bool:
        """Interrupt the running code, as Ctrl-C would; return whether something was running."""
        run = self._running
        if run is None or run.done.is_set():
            return False
        run.kernel.interrupt()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a run in progress to end and be recorded; return whether it did.

        A page calls it after Interrupt or Restart, so the same rerun shows the stopped run and the status.
        """
        run = self._running
        return run is None or run.done.wait(timeout)

    def restart(self) -> str:
        """Restart the kernel (its state is lost; a run in progress stops) and return a sentence for the user.

        Raises:
            KernelDiedError: If the kernel cannot be restarted.
        """
        if self._kernel is None:
            return "The kernel has not started yet; it starts on the first run."
        self._kernel.restart()
        self._model_notes.append(f"The user restarted the kernel: {STATE_LOST}.")
        return f"The kernel was restarted: {STATE_LOST}."

    def release(self) -> None:
        """Give the kernel back to the pool, which shuts it down (a given kernel is left running)."""
        if self._given is None and self._pool is not None and self._kernel is not None:
            self._pool.release(self.session_id)
            self._kernel = None

    # --- files --------------------------------------------------------------------------------
    @staticmethod
    def _files_of(kernel: CodeKernel) -> Any:
        """What handles the kernel's files: the kernel itself, or its ``workdir`` on this machine.

        Kernels of the pool have ``save_file``, ``read_file`` and ``list_files`` (local, or through the
        kernel on a gateway); a kernel given by a caller may have only a ``workdir``.

        Raises:
            KernelError: If it has neither (a kernel given by a caller may not).
        """
        if all(hasattr(kernel, name) for name in ("save_file", "read_file", "list_files")):
            return kernel
        workdir = getattr(kernel, "workdir", None)
        if workdir is None:
            raise KernelError("This kernel has no work folder; files cannot be uploaded or listed.")
        return LocalFolder(Path(workdir))

    def upload(self, name: str, data: bytes) -> Path:
        """Save an uploaded file into the work folder; the model is told its name with the next message.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder.
            WorkdirFullError: If there is no room for it.
        """
        return Path(self._files_of(self.kernel).save_file(os.path.basename(name) or name, data))

    def files(self) -> list[FileInfo]:
        """The files in the work folder (empty before the kernel starts)."""
        kernel = self._kernel
        if kernel is None or not (hasattr(kernel, "list_files") or getattr(kernel, "workdir", None)):
            return []
        return list(self._files_of(kernel).list_files())

    def zip_files(self) -> bytes:
        """Every file of the work folder in one zip archive (folders kept), for a download-all.

        A file that vanishes while the archive is made is left out.
        """
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info in self.files():
                try:
                    data = self.read_file(info.name)
                except KernelError:
                    continue
                archive.writestr(info.name, data)
        return buffer.getvalue()

    def read_file(self, name: str) -> bytes:
        """The bytes of a file in the work folder, for download.

        Raises:
            WorkdirPathError: If ``name`` leaves the work folder or is not a file.
        """
        return bytes(self._files_of(self.kernel).read_file(name))

    # --- runs ---------------------------------------------------------------------------------
    def start_user_cell(self, code: str) -> BackgroundRun:
        """Start one of the user's cells in the background; it is added to :attr:`runs` when it ends.

        Raises:
            EmptyPromptError: If ``code`` is blank.
            KernelError: If code is already running, or no kernel is available.
        """
        if not code.strip():
            raise EmptyPromptError("The cell is empty; write some Python to run.")
        return self.start_run(code, "user")

    def run_user_cell(self, code: str) -> Execution:
        """Run one of the user's cells to the end (see :meth:`start_user_cell`).

        Raises:
            KernelError: If it could not run (busy, or the kernel died and could not restart).
        """
        record = self.start_user_cell(code).result()
        if record.execution is None:
            raise KernelError(record.error)
        return record.execution

    def start_run(self, code: str, source: RunSource) -> BackgroundRun:
        """Start a run in the background with the time-out setting.

        Raises:
            KernelError: If code is already running, or no kernel is available.
        """
        with self._lock:
            if self.busy:
                raise KernelError("The kernel is busy with another run; wait for it or press Interrupt.")
            run = BackgroundRun(code, source, self.kernel)
            self._running = run
        run.start(self.code.timeout, self._record_run)
        return run

    def _record_run(self, run: BackgroundRun, execution: Execution | None, error: str) -> None:
        """Add a finished run to the history (called from the run's worker thread)."""
        record = CodeRun(len(self.runs), run.code, run.source, execution, error)
        self.runs.append(record)
        run.record = record
        if execution is not None and execution.restarted and run.source == "user":
            self._model_notes.append(f"The kernel was restarted while running the user's code: {STATE_LOST}.")
        self._run_recorded(run, record)

    def _run_recorded(self, run: BackgroundRun, record: CodeRun) -> None:
        """Hook for the model loop: a run was recorded (runs in the worker thread)."""


class LocalFolder:
    """The file methods of a kernel for a plain work folder on this machine (a kernel given without them)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def save_file(self, name: str, data: bytes) -> Path:
        """Write ``name`` into the folder (see :func:`kernel.save_upload`)."""
        return save_upload(self.workdir, name, data)

    def read_file(self, name: str) -> bytes:
        """Read ``name`` from the folder (see :func:`kernel.read_file`)."""
        return read_file(self.workdir, name)

    def list_files(self) -> list[FileInfo]:
        """The folder's files (see :func:`kernel.list_files`)."""
        return list_files(self.workdir)


def create_pool(session_alive: Callable[[str], bool] | None = None) -> KernelPool:
    """The app's kernel pool, sized by ``WORKBENCH_MAX_KERNELS`` and ``WORKBENCH_KERNEL_IDLE_S``.

    With ``WORKBENCH_KERNEL_GATEWAY`` set its kernels run on that Kernel Gateway (:mod:`workbench.kernels`).

    A background thread stops kernels left idle that long (a backstop: the app releases a session's
    kernel when the session ends, and a full pool first frees the kernels of sessions that are gone).

    Args:
        session_alive: Whether a session id still belongs to a live session (see :class:`KernelPool`).

    Raises:
        KernelError: If a setting is not a positive number, or the gateway's URL is not one.
    """
    max_kernels = _env_number("WORKBENCH_MAX_KERNELS", 4)
    idle = _env_number("WORKBENCH_KERNEL_IDLE_S", 1800)
    pool = KernelPool(
        gateway=gateway_config(),
        max_kernels=int(max_kernels),
        idle_timeout=idle,
        warm_spare=True,
        session_alive=session_alive,
        limit_hint=(
            f"or set WORKBENCH_MAX_KERNELS (now {int(max_kernels)}) to a higher number and restart the app."
        ),
    )
    _start_reaper(pool, every=min(60.0, idle / 2))
    return pool


SESSION_END_CHECK_S = 5.0
"""Seconds after a session-end hook before its session's kernel goes, if the session is really gone."""

_app_pool: KernelPool | None = None
_app_pool_lock = threading.Lock()


def shared_pool(session_alive: Callable[[str], bool] | None = None) -> KernelPool:
    """The app's one kernel pool (made by :func:`create_pool` at the first call), for the whole process.

    Module-level rather than in Streamlit's ``st.cache_resource``, which any browser can empty with a
    ``clear_cache`` message: a second pool would start kernels beside the first one's, which would keep
    running unaccounted. A failed creation (a bad setting) is not kept, so the next call tries again.

    Args:
        session_alive: Whether a session id still belongs to a live session (used at the first call).

    Raises:
        KernelError: If a setting is not a positive number.
    """
    global _app_pool
    with _app_pool_lock:
        if _app_pool is None:
            _app_pool = create_pool(session_alive=session_alive)
        return _app_pool


def release_when_gone(pool: KernelPool, delay: float = SESSION_END_CHECK_S) -> None:
    """A session-end hook: after ``delay`` seconds, free the kernels of the sessions that are gone.

    Streamlit calls its session-scoped release hooks when a session ends, but also for every session
    at once when any browser sends ``clear_cache``; so the hook asks the pool's ``session_alive``
    (:meth:`KernelPool.reap_dead`) instead of trusting the call, and the live sessions keep their kernels.
    The delay lets Streamlit finish removing a session that is ending.
    """
    timer = threading.Timer(delay, pool.reap_dead)
    timer.daemon = True
    timer.start()


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise KernelError(f"{name}={raw!r} is not a positive number; fix or unset it, then restart the app.")
    return value


def _start_reaper(pool: KernelPool, every: float) -> None:
    ref = weakref.ref(pool)

    def reap() -> None:
        while True:
            time.sleep(every)
            live = ref()
            if live is None:
                return
            live.reap_idle()
            del live

    threading.Thread(target=reap, name="kernel-reaper", daemon=True).start()
