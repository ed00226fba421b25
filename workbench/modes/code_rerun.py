"""Running a Code conversation's cells again: to rebuild a kernel's state for the branch shown.

A Code conversation keeps every output and image of its runs (in its messages), but not the kernel's
variables: a reopened conversation gets a new kernel, and a switch of branches leaves the kernel with
another branch's state. :func:`rerun_cells` runs the code a thread holds, in order, when the user asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kernel import Execution
from workbench.errors import WorkbenchError
from workbench.messages import Message, Role


def code_cells(messages: list[Message]) -> list[str]:
    """The code the interpreter ran in a conversation, in order (the model's code turns)."""
    from workbench.modes.code_format import split_code  # the code format, only when asked for

    cells = []
    for message in messages:
        if message.role is Role.ASSISTANT and message.interpreter:
            code = split_code(message)[1]
            if code and code.strip():
                cells.append(code)
    return cells


@dataclass
class RerunReport:
    """What re-running a conversation's cells did.

    Attributes:
        ran: How many cells ran to the end without raising.
        failed: For each cell that raised or could not run: its number (from 1) and why.
    """

    ran: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        text = f"Re-ran {self.ran + len(self.failed)} cells: {self.ran} ran"
        if self.failed:
            text += ", " + "; ".join(f"cell {n} failed ({why})" for n, why in self.failed)
        return text + "."


def rerun_cells(run: Callable[[str], Execution], cells: list[str]) -> RerunReport:
    """Run ``cells`` in order with ``run`` (``CodeSession.run_user_cell``); go on after a failure.

    ``run`` may raise a :class:`WorkbenchError` when a cell cannot run (the kernel is busy or died).
    """
    report = RerunReport()
    for number, code in enumerate(cells, 1):
        try:
            execution = run(code)
        except WorkbenchError as exc:
            report.failed.append((number, str(exc)))
            continue
        if execution.ok:
            report.ran += 1
        elif execution.error is not None:
            report.failed.append((number, f"{execution.error.name}: {execution.error.value}"))
        else:
            report.failed.append((number, execution.note or "timed out"))
    return report
