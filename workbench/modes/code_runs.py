"""Code runs in the background: one ``execute`` in a worker thread, its record, and progress events.

Running code in a worker thread keeps the caller responsive: a mode loop yields a
:class:`CodeRunning` event every fraction of a second, so a Streamlit script reaches a checkpoint
(and can be stopped, which interrupts the kernel) while long code runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kernel import Execution
from workbench.errors import USER_ERRORS, KernelError
from workbench.execution_record import ExecutionRecord
from workbench.messages import Message
from workbench.modes.code_format import execution_record

RunSource = Literal["model", "user"]


class CodeKernel(Protocol):
    """What the code loop needs of a kernel (:class:`kernel.KernelSession` provides it)."""

    @property
    def alive(self) -> bool:
        """True while the kernel process runs."""
        ...

    def execute(self, code: str, timeout: float = 30.0) -> Execution:
        """Run code and collect its outputs."""
        ...

    def interrupt(self) -> None:
        """Interrupt the running code."""
        ...

    def restart(self) -> None:
        """Restart the kernel (state lost)."""
        ...


class KernelProvider(Protocol):
    """Where a session's kernel comes from (:class:`kernel.KernelPool` provides it): one per session id."""

    def get(self, session_id: str) -> CodeKernel:
        """Return the session's kernel, starting one if needed."""
        ...

    def release(self, session_id: str) -> None:
        """Shut the session's kernel down."""
        ...


@dataclass
class CodeRunning:
    """Event: code is running (yielded when it starts, then every fraction of a second).

    Attributes:
        code: The code being run.
        seconds: Seconds since it started.
    """

    code: str
    seconds: float = 0.0


@dataclass
class CodeRun:
    """One finished run in a session's history (the model's code or a user's cell).

    Attributes:
        number: Its index in the session's run history.
        code: The code.
        source: ``"model"`` or ``"user"``.
        execution: What it produced, or None if it could not run at all.
        error: Why it could not run (a message for the user), or "".
    """

    number: int
    code: str
    source: RunSource
    execution: Execution | None = None
    error: str = ""

    def outputs(self) -> ExecutionRecord | None:
        """What the run showed, in the transcript's own type (for saving a user's cell); None if it never ran."""
        return None if self.execution is None else execution_record(self.execution)


@dataclass
class BackgroundRun:
    """One ``kernel.execute`` call in a worker thread.

    Attributes:
        code: The code.
        source: Who wrote it.
        kernel: The kernel it runs in (for interrupts).
        record: The finished run, set just before :attr:`done`.
        observation: For the model's code, the observation recorded in the conversation.
    """

    code: str
    source: RunSource
    kernel: CodeKernel
    record: CodeRun | None = None
    observation: Message | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)

    def start(self, timeout: float, on_done: Callable[[BackgroundRun, Execution | None, str], None]) -> None:
        """Start the worker; ``on_done(run, execution, error)`` is called from it before :attr:`done`."""
        threading.Thread(target=self._work, args=(timeout, on_done), name="code-run", daemon=True).start()

    def _work(self, timeout: float, on_done: Callable[[BackgroundRun, Execution | None, str], None]) -> None:
        execution: Execution | None = None
        error = ""
        try:
            execution = self.kernel.execute(self.code, timeout=timeout)
        except USER_ERRORS as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a kernel layer must not leave the session busy forever
            error = f"Running the code failed unexpectedly ({exc!r}). Restart the kernel and try again."
        finally:
            try:
                on_done(self, execution, error)
            finally:
                self.done.set()

    @property
    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def progress(self, every: float = 0.25) -> Iterator[float]:
        """Yield the elapsed seconds every ``every`` seconds until the run ends."""
        while not self.done.wait(every):
            yield self.seconds

    def watch(self, every: float = 0.25, grace: float = 5.0) -> Iterator[float]:
        """Yield 0.0, then as :meth:`progress`; a consumer that goes away (a stopped script) interrupts the run.

        Args:
            every: Seconds between yields.
            grace: Seconds to wait, after the interrupt, for the run to end and be recorded.
        """
        try:
            yield 0.0
            yield from self.progress(every)
        finally:
            if not self.done.is_set():
                self.kernel.interrupt()
                self.done.wait(grace)

    def result(self, timeout: float | None = None) -> CodeRun:
        """Wait for the end and return the run's record.

        Raises:
            KernelError: If the run has not ended within ``timeout`` seconds.
        """
        if not self.done.wait(timeout) or self.record is None:
            raise KernelError(
                f"The code is still running after {self.seconds:.0f} s; press Interrupt or Restart."
            )
        return self.record


@dataclass
class CodeSettings:
    """How code runs and how the model's code loop behaves.

    Attributes:
        max_rounds: Code runs allowed per user message.
        timeout: Wall-clock seconds per run before it is interrupted.
        force_code: Start the first reply to each message with an opening python fence, so even a
            weak model writes code to run.
        worked_example: Show the model a short solved exchange first (small models copy its shape).
        observation_chars: Characters of output the model sees per run (the page shows more).
        max_stored_output_bytes: Bytes of run outputs (images, text, HTML) one conversation keeps;
            a run beyond it keeps no images and cut text, with a note (bounds the store's disk use).
    """

    max_rounds: int = 5
    timeout: float = 30.0
    force_code: bool = True
    worked_example: bool = True
    observation_chars: int = 4000
    max_stored_output_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class KernelStatus:
    """What the page's kernel indicator shows.

    Attributes:
        state: ``"not started"``, ``"idle"``, ``"busy"`` or ``"dead"``.
        sandboxed: Whether code runs in the sandbox (before a kernel exists: whether it will).
        reason: Why it is NOT sandboxed, or "".
        gateway: The Kernel Gateway the kernel runs on (``http://host:port``), or "" for a local kernel.
    """

    state: str
    sandboxed: bool
    reason: str = ""
    gateway: str = ""

    @property
    def label(self) -> str:
        """One line, such as ``"Kernel: idle · sandboxed"`` or ``"Kernel: idle · on gateway http://h:8888"``."""
        where = (
            f"on gateway {self.gateway}"
            if self.gateway
            else "sandboxed"
            if self.sandboxed
            else "NOT sandboxed"
        )
        return f"Kernel: {self.state} · {where}"
