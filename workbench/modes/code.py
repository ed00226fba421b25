"""The code-interpreter loop: the model writes Python, the session's kernel runs it, the outputs go back.

A :class:`CodeSession` belongs to one browser session (or one CLI run) and holds its kernel, taken
from a :class:`kernel.KernelPool` on first use or given ready-made. :meth:`CodeSession.send`
returns a :class:`CodeTurn`, an iterator of events:

- :class:`TextDelta` while the model writes (code included: the page shows it as it comes);
- :class:`MessageDone` for each finished message: the code turn, the observation, the answer;
- :class:`CodeRunning` while the code runs (the page's checkpoint to stay stoppable);
- :class:`Notice` for time-outs, restarts, deaths and the round limit.

At most ``max_rounds`` code runs happen per user message. The user's own cells
(:meth:`CodeSession.run_user_cell`) run in the same kernel, so they share its variables, but they
are kept in :attr:`CodeSession.runs` only, not in the model's conversation: the model hears of them
only when they restarted the kernel. Whatever ends a turn (the end, Stop, a closed tab), what the
model wrote and what ran is recorded once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from workbench.chat_model import ChatModel, text_only_refusal
from workbench.conversation import Conversation, Mode
from workbench.errors import USER_ERRORS, EmptyPromptError, KernelError, WorkbenchError
from workbench.messages import Message, Role
from workbench.models.generation import GenerationStream, SamplingSettings
from workbench.modes import attachments
from workbench.modes.code_format import (
    CODE_FENCE,
    DEFAULT_SYSTEM_PROMPT,
    code_prefix,
    complete_block_end,
    context_lines,
    fit_output_cap,
    mark_code_turn,
    not_run_message,
    observation_message,
    output_bytes,
    split_code,
    worked_example,
)
from workbench.modes.code_rerun import RerunReport, code_cells, rerun_cells
from workbench.modes.code_runs import (
    BackgroundRun,
    CodeKernel,
    CodeRun,
    CodeRunning,
    CodeSettings,
    KernelProvider,
)
from workbench.modes.code_workspace import Workspace, create_pool, release_when_gone, shared_pool
from workbench.modes.events import Event, MessageDone, Notice, TextDelta, waiting_events

if TYPE_CHECKING:
    from workbench.documents import AttachedDocuments
    from workbench.documents.context import Retriever, Source

CodeEvent = Event | CodeRunning
# How long closing a turn waits for an interrupted run to end.
_INTERRUPT_WAIT_S = 5.0


class CodeTurn:
    """The events of one user message; closing the turn stops the model and interrupts its code."""

    def __init__(self, session: CodeSession, asked: Message | None = None) -> None:
        self.session = session
        self.asked = asked
        """The user's message this turn answers (None for an edit or a regenerate): taken back when the
        model refuses it before its answer begins."""
        self.stopped = False
        self.closed = False
        self.stream: GenerationStream | None = None
        self.run: BackgroundRun | None = None
        self.sources: list[Source] = []
        """The question's sources; the turn's first reply keeps them (``metadata["sources"]``)."""
        self.question: attachments.Question | None = None
        """The question's id and the text the model reads (with its sources), or None."""
        self._events = session._loop(self)

    def __iter__(self) -> Iterator[CodeEvent]:
        try:
            yield from self._events
        finally:
            self.close()

    def __enter__(self) -> CodeTurn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Stop the model after its current token, or interrupt the code it is running."""
        self.stopped = True
        if self.stream is not None:
            self.stream.cancel()
        if self.run is not None and not self.run.done.is_set():
            self.run.kernel.interrupt()

    def close(self) -> None:
        """Stop whatever still runs and record it (once); safe from any thread."""
        if self.closed:
            return
        self.closed = True
        if not (self.stream is None or self.stream.done.is_set()) or not (
            self.run is None or self.run.done.is_set()
        ):
            self.stop()
        with contextlib.suppress(ValueError):  # running in another thread, which sees `stopped` and ends
            self._events.close()
        self.session._finish(self)


class CodeSession(Workspace):
    """A code-interpreter conversation on top of a :class:`Workspace` (kernel, files, cells).

    Args:
        model: The shared model.
        kernel: A kernel to use (the caller shuts it down), or None to take one from ``pool``.
        pool: Where the session's kernel comes from (one per ``session_id``).
        session_id: This session's key in ``pool``.
        system_prompt: The instructions; the work folder's files are appended when sent.
        settings: Sampling settings.
        code_settings: Loop settings (rounds, time-out, forcing code).

    Attributes:
        history: The conversation (mode code): user, assistant and observation messages (no system
            prompt); each interpreter observation carries its run's full outputs.
        active: The turn being answered, if any.
        documents: Attached documents or a knowledge base: each question is sent with its sources
            (as in :class:`~workbench.modes.chat.ChatSession`).
        attached: The files attached to the conversation: each message first puts those missing
            from the work folder into it (a new kernel gets them back), and the model is told their
            names.

    Raises:
        KernelError: If neither a kernel nor a pool is given.
    """

    def __init__(
        self,
        model: ChatModel,
        kernel: CodeKernel | None = None,
        *,
        pool: KernelProvider | None = None,
        session_id: str = "default",
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        settings: SamplingSettings | None = None,
        code_settings: CodeSettings | None = None,
        history: Conversation | None = None,
    ) -> None:
        super().__init__(kernel, pool=pool, session_id=session_id, code_settings=code_settings)
        self.model = model
        self.system_prompt = system_prompt
        self.settings = settings or model.default_settings()
        self.history = history if history is not None else Conversation(Mode.CODE)  # an empty one is falsy
        self.active: CodeTurn | None = None
        self.kernel_message_id: str | None = None
        """The message whose thread the kernel's state comes from (the last model run's observation)."""
        self.documents: Retriever | None = None
        self.attached: AttachedDocuments | None = None

    @property
    def messages(self) -> list[Message]:
        """A copy of the history's messages (change them through :attr:`history`)."""
        return self.history.snapshot()

    def close(self) -> None:
        """Stop any turn and give the kernel back to the pool (a given kernel is left running)."""
        self.stop()
        self.release()

    # --- the model's turns --------------------------------------------------------------------
    def conversation(self) -> list[Message]:
        """The messages as sent to the model: system prompt (with files and notes), example, history."""
        files = [f.name for f in self.files()] if self._kernel is not None else []
        extra = context_lines(files, self._model_notes)
        attached = [f.name for f in self.attached.listing()] if self.attached is not None else []
        if attached:
            extra += (
                f"\nThe user attached these documents; they are in the current folder: {', '.join(attached)}."
            )
        system = "\n\n".join(part for part in (self.system_prompt.strip(), extra) if part)
        head = [Message(Role.SYSTEM, system)] if system else []
        example = worked_example() if self.code.worked_example else []
        return head + example + self.messages

    def transcript(self) -> list[Message]:
        """The system prompt and the history, without the worked example (for ``--json`` and saving)."""
        return [m for m in self.conversation() if m.role is Role.SYSTEM][:1] + self.messages

    def send(self, text: str, images: Sequence[bytes] = ()) -> CodeTurn:
        """Add the user's message (with its images, checked PNG bytes) and return the turn that answers it.

        Iterate the turn for its events. A :class:`WorkbenchError` they raise before the answer begins
        (``PromptTooLongError``: the conversation no longer fits the model's context) takes the message
        back, as the chat and tool loops do, so nothing is half-recorded.

        Raises:
            EmptyPromptError: If ``text`` is blank.
            ImageInputError: If the message has images and the model reads text only (nothing is recorded).
            KernelError: If code from an earlier turn or cell is still running.
        """
        if not text or not text.strip():
            raise EmptyPromptError("The message is empty; type something to send.")
        if images and not self.model.capabilities.vision:
            raise text_only_refusal(self.model.info.label)
        self._ready_for_turn()
        if self._kernel is not None:
            _ = self.kernel  # notices a kernel the pool replaced, before the model is told of the files
        self._place_attached()
        asked = Message(Role.USER, text, images=list(images))
        self.history.append(asked)
        self.active = CodeTurn(self, asked)
        return self.active

    def edit(self, message_id: str, text: str) -> CodeTurn:
        """Edit one of the user's messages: its new text becomes a sibling, answered afresh.

        The answer's code runs in the kernel as it is, which may hold another branch's state (see
        :meth:`kernel_branch_note`).

        Raises:
            BranchError: If there is no such user message, or ``text`` is blank.
            KernelError: If code is still running.
        """
        self._ready_for_turn()
        self._place_attached()
        self.history.edit(message_id, text)
        self.active = CodeTurn(self)
        return self.active

    def regenerate(self, message_id: str | None = None) -> CodeTurn:
        """Answer again beside an old answer, which stays as a sibling; its code runs again.

        Raises:
            EmptyPromptError: If there is no user message to answer yet.
            BranchError: If ``message_id`` is not an answer of this conversation.
            KernelError: If code is still running.
        """
        self._ready_for_turn()
        self._place_attached()
        self.history.regenerate(message_id)
        self.active = CodeTurn(self)
        return self.active

    def place_attached(self) -> list[str]:
        """Put the attached files that the work folder lacks into it (see :func:`place_attached`)."""
        return attachments.place_attached(self, self.attached)

    def _place_attached(self) -> None:
        """Before a message: the attached files into the folder; a failure is said, not raised."""
        try:
            self.place_attached()
        except USER_ERRORS as exc:
            self._user_notes.append(f"An attached file could not be put into the work folder: {exc}")

    def _ready_for_turn(self) -> None:
        self.stop()
        if self.busy:
            raise KernelError(
                "Code is still running; wait for it, press Interrupt or Restart, then send again."
            )

    # --- the kernel and the branches --------------------------------------------------------
    def kernel_branch_note(self) -> str | None:
        """Say so when the kernel's state comes from another branch than the one shown, else None.

        The kernel holds what the last code run did. When the user switches to a branch that does not
        contain that run, its variables are another branch's: the page offers to re-run this branch's
        cells (:meth:`rerun_branch`), and the two are never silently mixed.
        """
        ran = self.kernel_message_id
        if ran is None or any(message.id == ran for message in self.history.snapshot()):
            return None
        try:
            where = self.history.get(ran)
            label = " ".join(where.content.split())[:60] or "code run"
            origin = f"another branch (its last run: {label!r})"
        except WorkbenchError:
            origin = "a branch that has since been deleted"
        return (
            f"The kernel holds the state of {origin}, not of the branch shown. Re-run this branch's "
            "cells to rebuild its variables, or go on knowing they differ."
        )

    def rerun_branch(self) -> RerunReport:
        """Restart the kernel, then run the shown branch's code cells again, in order.

        Returns:
            What ran and what failed.

        Raises:
            KernelError: If code is running, or the kernel cannot be restarted.
        """
        self._ready_for_turn()
        if self.kernel_started:
            self.restart()
        report = rerun_cells(self.run_user_cell, code_cells(self.history.snapshot()))
        self.kernel_message_id = self.history.current_id
        return report

    def stop(self) -> None:
        """Close the turn in progress, if any, keeping what it wrote and ran."""
        if self.active is not None:
            self.active.close()

    def clear(self) -> None:
        """Stop any turn and empty the conversation (the kernel, its state and the cells stay)."""
        self.stop()
        self.history.clear()

    # --- internals ----------------------------------------------------------------------------
    def _run_recorded(self, run: BackgroundRun, record: CodeRun) -> None:
        """The model's run ended: its observation joins the conversation (from the worker thread)."""
        if run.source != "model":
            return
        if record.execution is not None:
            observation = observation_message(record.execution, self.code.observation_chars)
            cap = self.code.max_stored_output_bytes
            room = cap - sum(output_bytes(message) for message in self.history.snapshot())
            run.observation = fit_output_cap(observation, room, cap)
        else:
            run.observation = not_run_message(record.error)
        self.history.append(run.observation)
        self.kernel_message_id = run.observation.id

    def _loop(self, turn: CodeTurn) -> Generator[CodeEvent, None, None]:
        try:
            yield from self._answer(turn)
        except WorkbenchError:
            if turn.asked is not None and turn.stream is None:  # refused before any answer began
                self.history.remove_if_last(turn.asked)
            raise

    def _answer(self, turn: CodeTurn) -> Generator[CodeEvent, None, None]:
        for note in self.pop_notices():
            yield Notice(note, "warning")
        turn.question, turn.sources = attachments.find_sources(
            self.model, self.settings, self.conversation(), self.documents
        )
        # Forcing the fence open: a prefix, or on a chat server a forced call of the interpreter tool.
        runs, forced = 0, self.code.force_code and self.model.capabilities.forces_code
        try:
            while not turn.stopped:
                message = yield from self._generate(turn, forced)
                forced = False
                code = split_code(message)[1]
                if code is None or turn.stopped or message.failure is not None:
                    return
                if runs >= self.code.max_rounds:
                    yield from self._refuse(
                        f"the limit of {self.code.max_rounds} code runs for one message was reached",
                        f"The model wanted to run code again after {runs} runs for this message; that code was "
                        "not run. Send another message to let it continue, or raise 'Max code runs'.",
                    )
                    return
                runs += 1
                try:
                    run = self.start_run(code, "model")
                except USER_ERRORS as exc:
                    yield from self._refuse(str(exc), f"The code could not run: {exc}", "error")
                    return
                yield from self._wait_for(turn, run)
        finally:
            self._model_notes.clear()  # the model has been told; they are not part of the history

    def _refuse(self, reason: str, notice: str, level: str = "warning") -> Generator[CodeEvent, None, None]:
        observation = not_run_message(reason)
        self.history.append(observation)
        yield MessageDone(observation)
        yield Notice(notice, level)

    def _wait_for(self, turn: CodeTurn, run: BackgroundRun) -> Generator[CodeEvent, None, None]:
        turn.run = run
        for seconds in run.watch(grace=_INTERRUPT_WAIT_S):  # a closed turn interrupts the run
            yield CodeRunning(run.code, seconds)
        if run.observation is not None:
            yield MessageDone(run.observation)
        record = run.record
        if record is not None and record.execution is not None and record.execution.note:
            yield Notice(record.execution.note, "warning")
        if record is not None and record.error:
            yield Notice(record.error, "error")
            turn.stopped = True

    def _generate(self, turn: CodeTurn, forced: bool) -> Generator[CodeEvent, None, Message]:
        """Stream one reply; record it (partial if stopped) and return it."""
        prefix = code_prefix(self.model.dialect) if forced else ""
        # With the fence forced open, the next ``` closes it; otherwise a complete block is cut below.
        stream = self.model.stream(
            attachments.with_question(self.conversation(), turn.question),
            self.settings,
            prefix=prefix,
            stop_strings=("```",) if forced else (),
        )
        turn.stream = stream
        received, ended = "", False
        try:
            waiting = list(waiting_events(stream))
            yield from waiting
            fence = forced  # shown at once, or when the first text replaces the waiting notice
            if fence and not waiting:
                yield TextDelta(CODE_FENCE)
                fence = False
            for chunk in stream:
                if fence:
                    yield TextDelta(CODE_FENCE)
                    fence = False
                end = None if forced else complete_block_end(received + chunk)
                if end is not None:
                    chunk = (received + chunk)[len(received) : end]
                    stream.cancel()
                received += chunk
                if chunk:
                    self.history.draft(prefix + received)  # a store checkpoints it (a crash keeps it)
                    yield TextDelta(chunk)
                if end is not None or turn.stopped:
                    break
            ended = not turn.stopped
        finally:
            stream.halt()
            message = self._record_reply(prefix + stream.text, stream, stopped=not ended, turn=turn)
        yield MessageDone(message)
        return message

    def _record_reply(self, text: str, stream: GenerationStream, stopped: bool, turn: CodeTurn) -> Message:
        message = mark_code_turn(self.model.dialect.parse(text))
        message.stats = stream.stats.to_dict()
        attachments.keep_sources(message, turn.sources)  # the turn's first reply read them first
        turn.sources = []
        if stream.error is not None:
            message.failure = str(stream.error)
        elif stopped:
            message.stopped = True
        if message.content or split_code(message)[1] is not None or not stopped:
            self.history.append(message)
        return message

    def _finish(self, turn: CodeTurn) -> None:
        if self.active is turn:
            self.active = None


__all__ = [
    "CodeEvent",
    "CodeRun",
    "CodeRunning",
    "CodeSession",
    "CodeSettings",
    "CodeTurn",
    "create_pool",
    "release_when_gone",
    "shared_pool",
]
