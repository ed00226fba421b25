"""The tool loop: the model calls tools, the registry runs them, the results go back as observations.

A :class:`ToolSession` belongs to one page of one browser session (or one CLI run). ``send(text)``
answers one user message and yields :mod:`events <workbench.modes.events>` while it works: the model
writes, each call it makes is validated and run by the registry, each result is appended as an
``observation`` message, and the model writes again, at most ``max_rounds`` times. The final answer
streams as :class:`TextDelta`.

Every call is decoded under a JSON schema built from the enabled tools (xgrammar, see
:mod:`workbench.models.constrained`), so it names a real tool with arguments of the right shape:

* ``required``: the first reply of the turn starts with the dialect's call opener (``<tool_call>``)
  and continues as constrained JSON;
* ``auto``: the model writes freely until it writes the opener itself, then the call is constrained;
* ``none``: no tools are shown to the model.

A bad call never raises: the registry turns it into an error result, and a call the dialect could not
read becomes an error observation, so the model sees what went wrong.

Each call runs in a worker thread (:mod:`workbench.modes.tool_calls`): the loop yields its progress
(:class:`CallProgress`) while it runs, and :meth:`ToolSession.stop` or a consumer going away cancels it
(an MCP server is sent ``notifications/cancelled``). With ``ask_confirmation``, a call to an MCP server
configured with ``confirm`` pauses the turn (:class:`ConfirmationNeeded`, :attr:`ToolSession.pending`)
until :meth:`ToolSession.decide` runs or skips it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from tools import ToolRegistry
from tools.arguments import validation_schema
from workbench.chat_model import ChatModel, text_only_refusal
from workbench.conversation import Conversation, Mode
from workbench.dialects.base import Dialect, strip_stop_strings
from workbench.dialects.calls import InvalidCall, invalid_calls
from workbench.errors import EmptyPromptError, WorkbenchError
from workbench.messages import Message, Role, ToolCall
from workbench.models.generation import GenerationStream, SamplingSettings
from workbench.modes import attachments
from workbench.modes.events import ConfirmationNeeded, Event, MessageDone, Notice, TextDelta, waiting_events
from workbench.modes.tool_calls import PendingCall, RunningCall, observation, skipped, stopped

if TYPE_CHECKING:
    from workbench.documents.context import Retriever, Source

MALFORMED_CALL = "MalformedCallError"
"""``error_type`` of the observation answering a call the dialect could not read."""


#: Seconds a message waits for tools still loading in the background before it is answered without them.
TOOLS_LOAD_WAIT_S = 60.0


class ToolChoice(str, Enum):
    """Whether the model may (auto), must (required) or must not (none) call a tool."""

    AUTO = "auto"
    REQUIRED = "required"
    NONE = "none"


@dataclass
class ToolOptions:
    """How the loop runs.

    Attributes:
        tool_choice: auto, required (the first reply of each user turn is a call) or none.
        max_rounds: Replies the model may write per user message, calls included.
        call_timeout_s: Seconds a tool may run, for tools that set none; None for the registry's default.
        max_result_chars: A result longer than this is cut, with a visible marker, before the model sees it.
        ask_confirmation: Pause the turn before a call to an MCP server configured with ``confirm`` until
            the user runs or skips it (:meth:`ToolSession.decide`; the app's Run/Skip). Off, such calls
            follow the registry's ``mcp.confirm`` callback (``--yes`` on the CLI) or are refused.
    """

    tool_choice: ToolChoice = ToolChoice.AUTO
    max_rounds: int = 5
    call_timeout_s: float | None = None
    max_result_chars: int = 4000
    ask_confirmation: bool = False

    def __post_init__(self) -> None:
        self.tool_choice = ToolChoice(self.tool_choice)


def default_tool_choice(model: ChatModel) -> ToolChoice:
    """``required`` for models that never open a call on their own (the embedded SmolLM2-135M); else ``auto``."""
    return ToolChoice.AUTO if model.capabilities.opens_tool_calls else ToolChoice.REQUIRED


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the JSON schema of one call to any of ``tools``.

    Each tool gives ``{"name": <const>, "arguments": <its parameters>}``; several tools are ``anyOf``.
    The parameters are spelled as the registry validates them (``Optional`` as ``null`` allowed, no
    extra arguments), so a constrained call also passes validation.
    """
    variants = []
    for tool in tools:
        function = tool.get("function", tool)
        variants.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": function["name"]},
                    "arguments": validation_schema(function.get("parameters") or {"type": "object"}),
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


class _HeldBackText:
    """Passes text on as it streams, but never a marker (a call opener, a stop string) or its start.

    Each marker is followed with a Knuth-Morris-Pratt automaton (how much of its start the text ends
    with), so feeding is linear in the text, whatever its length and the markers'.
    """

    def __init__(self, markers: Iterable[str]) -> None:
        self.markers = [m for m in markers if m]
        self.pending = ""  # held back: it may be the start of a marker
        self.cut = False
        self._states = [0] * len(self.markers)
        self._fails = [_failure(m) for m in self.markers]

    def feed(self, chunk: str) -> str:
        if self.cut:
            return ""
        base = len(self.pending)
        self.pending += chunk
        starts = []
        for index, marker in enumerate(self.markers):
            state, fail = self._states[index], self._fails[index]
            for offset, char in enumerate(chunk):
                while state and marker[state] != char:
                    state = fail[state - 1]
                if marker[state] == char:
                    state += 1
                if state == len(marker):
                    starts.append(base + offset + 1 - state)
                    break
            self._states[index] = state
        if starts:
            self.cut = True
            return self.pending[: min(starts)]
        hold = max(self._states, default=0)
        out, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return out

    def flush(self) -> str:
        if self.cut:
            return ""
        out, self.pending = self.pending, ""
        return out


def _no_events() -> Generator[Event, None, None]:
    yield from ()


def _failure(marker: str) -> list[int]:
    """KMP's table: for each start ``marker[:i + 1]``, the length of its longest proper border."""
    fail = [0] * len(marker)
    border = 0
    for i in range(1, len(marker)):
        while border and marker[i] != marker[border]:
            border = fail[border - 1]
        if marker[i] == marker[border]:
            border += 1
        fail[i] = border
    return fail


class ToolSession:
    """A Tool-mode conversation: history, enabled tools, sampling settings and loop options.

    Attributes:
        model: The shared model.
        registry: The tools that can be called (shared; switching tools is per session).
        system_prompt: Sent first when not empty (the dialect appends the tool list to it).
        settings: Sampling settings.
        options: tool_choice, max rounds, time limit, result size.
        enabled: Names of the tools switched on here; None means every tool of the registry.
        history: The conversation (mode tool): user, assistant (with calls) and observation messages.
        pending: The call waiting for the user's Run or Skip (``options.ask_confirmation``), else None.
        documents: Attached documents or a knowledge base: each question is sent with its sources (as
            in :class:`~workbench.modes.chat.ChatSession`), in every round of its answer; the first
            reply keeps them in ``metadata["sources"]``.
    """

    def __init__(
        self,
        model: ChatModel,
        registry: ToolRegistry,
        *,
        system_prompt: str = "",
        settings: SamplingSettings | None = None,
        options: ToolOptions | None = None,
        history: Conversation | None = None,
    ) -> None:
        self.model = model
        self.registry = registry
        self.system_prompt = system_prompt
        self.settings = settings or model.default_settings()
        self.options = options or ToolOptions()
        self.enabled: set[str] | None = None
        self.history = history if history is not None else Conversation(Mode.TOOL)  # an empty one is falsy
        self._stream: GenerationStream | None = None
        self._events: Generator[Event, None, None] | None = None
        self._stop = threading.Event()
        self._busy = False
        self._running: RunningCall | None = None
        self.pending: PendingCall | None = None
        self.documents: Retriever | None = None
        self._question: attachments.Question | None = None  # the question's id, the text the model reads
        self._sources: list[Source] = []

    # --- tools ----------------------------------------------------------------------------------
    def is_enabled(self, name: str) -> bool:
        """Whether a tool is switched on in this conversation."""
        return self.enabled is None or name in self.enabled

    def set_enabled(self, name: str, on: bool) -> None:
        """Switch one tool on or off for this conversation."""
        current = set(self.registry.names()) if self.enabled is None else set(self.enabled)
        current = current | {name} if on else current - {name}
        self.enabled = current

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The schemas of the enabled tools, as the model is shown them."""
        return self.registry.schemas(self.enabled)

    # --- conversation ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a user message is being answered."""
        return self._busy

    @property
    def messages(self) -> list[Message]:
        """A copy of the history's messages (change them through :attr:`history`)."""
        return self.history.snapshot()

    def conversation(self) -> list[Message]:
        """The messages as sent to the model: the system prompt, then the history."""
        head = [Message(Role.SYSTEM, self.system_prompt)] if self.system_prompt.strip() else []
        return head + self.messages

    def send(self, text: str, images: Sequence[bytes] = ()) -> Generator[Event, None, None]:
        """Add the user's message (with its images, checked PNG bytes) and return the events of the answer.

        Iterate the events to run the answer.

        Raises:
            EmptyPromptError: If ``text`` is blank.
            ImageInputError: If the message has images and the model reads text only (nothing is recorded).
        """
        if not text or not text.strip():
            raise EmptyPromptError("The message is empty; type something to send.")
        if images and not self.model.capabilities.vision:
            raise text_only_refusal(self.model.info.label)
        self.stop()
        self._skip_pending()  # a new message answers a waiting call with Skip
        asked = Message(Role.USER, text, images=list(images))
        self.history.append(asked)
        self._stop.clear()
        self._events = self._turn(asked)
        return self._events

    def edit(self, message_id: str, text: str) -> Generator[Event, None, None]:
        """Edit one of the user's messages: its new text becomes a sibling, answered afresh.

        The answer runs its tool calls again (tools may have side effects).

        Raises:
            BranchError: If there is no such user message, or ``text`` is blank.
        """
        self.stop()
        self._skip_pending()  # a call waiting for Run or Skip is skipped, as a new message does
        edited = self.history.edit(message_id, text)
        self._stop.clear()
        self._events = self._turn(edited)
        return self._events

    def regenerate(self, message_id: str | None = None) -> Generator[Event, None, None]:
        """Answer again beside an old answer, which stays as a sibling; its tool calls run again.

        Args:
            message_id: The first message of the answer to replace; by default the shown thread's last.

        Raises:
            EmptyPromptError: If there is no user message to answer yet.
            BranchError: If ``message_id`` is not an answer of this conversation.
        """
        self.stop()
        self._skip_pending()
        self.history.regenerate(message_id)
        self._stop.clear()
        self._events = self._turn(None)
        return self._events

    def stop(self) -> None:
        """Stop the answer being written (from any thread); what was written so far is kept."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()
        running = self._running
        if running is not None:
            running.control.cancel()  # an MCP server is sent notifications/cancelled
        events, self._events = self._events, None
        if events is not None:
            # A turn left half-read by a stopped script ends here, recording its partial answer.
            with contextlib.suppress(ValueError):  # still running in another thread: the cancel ends it
                events.close()

    def clear(self) -> None:
        """Stop any answer and empty the history (system prompt, tools and settings stay)."""
        self.stop()
        self.pending = None
        self.history.clear()

    def decide(self, run: bool) -> Generator[Event, None, None]:
        """Run (``run``) or skip the :attr:`pending` call, and return the events of the rest of the turn.

        A skipped call's observation says the user skipped it; then the turn goes on as if the call had
        just returned. With nothing pending (or pending in another conversation), there are no events.
        """
        pending, self.pending = self.pending, None
        self.stop()
        self._stop.clear()
        if pending is None or pending.history is not self.history:
            return _no_events()
        self._events = self._resume(pending, run)
        return self._events

    def _skip_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None and pending.history is self.history:
            for call in (pending.call, *pending.rest):
                self.history.append(skipped(call))

    # --- the loop -------------------------------------------------------------------------------
    def _turn(self, asked: Message | None) -> Generator[Event, None, None]:
        self._busy = True
        try:
            choice = self.options.tool_choice
            if choice is not ToolChoice.NONE and self.registry.loading:
                # A message sent right after the page opened: answer with the tools, not without them.
                yield Notice("Waiting for the tools to finish loading before answering...", "info")
                if not self.registry.wait(TOOLS_LOAD_WAIT_S):
                    yield Notice(
                        f"The tools are still loading after {TOOLS_LOAD_WAIT_S:.0f} s; answering with the ones "
                        "loaded so far. The Tools panel names a file that is slow to import.",
                        "warning",
                    )
            tools = self.tool_schemas() if choice is not ToolChoice.NONE else []
            force = choice is ToolChoice.REQUIRED
            if force and not tools:
                force = False
                yield Notice(
                    "Tool choice is 'required' but no tool is switched on; answering without tools.",
                    "warning",
                )
            elif force and self.model.dialect.tool_call_open is None:
                yield Notice(
                    f"The {self.model.dialect.name} call format cannot be constrained, so 'required' is asked "
                    "for but not enforced: the model may still answer without a call.",
                    "warning",
                )
            try:
                self._question, self._sources = attachments.find_sources(
                    self.model, self.settings, self.conversation(), self.documents, tools
                )
            except WorkbenchError:  # the documents could not be searched: nothing was answered
                if asked is not None:
                    self.history.remove_if_last(asked)
                raise
            yield from self._rounds(tools, force=force, replies=0, calls=[], asked=asked)
        finally:
            self._busy = False

    def _resume(self, pending: PendingCall, run: bool) -> Generator[Event, None, None]:
        self._busy = True
        try:
            if run:
                answer = yield from self._observe(pending.call, confirmed=True)
            else:
                answer = skipped(pending.call)
            self.history.append(answer)
            yield MessageDone(answer)
            yield from self._rounds(
                pending.tools, force=False, replies=pending.replies, calls=pending.rest, asked=None
            )
        finally:
            self._busy = False

    def _rounds(
        self,
        tools: list[dict[str, Any]],
        *,
        force: bool,
        replies: int,
        calls: list[ToolCall | InvalidCall],
        asked: Message | None,
    ) -> Generator[Event, None, None]:
        """Run ``calls`` (the last reply's), then let the model write again, until it answers without a call.

        ``replies`` is how many replies this turn has had; at ``max_rounds`` the turn ends with a notice.
        """
        rounds = max(1, self.options.max_rounds)
        while True:
            for index, call in enumerate(calls):
                if self._stop.is_set():
                    return
                server = self._asks_first(call)
                if server is not None:
                    assert isinstance(call, ToolCall)
                    self.pending = PendingCall(call, server, calls[index + 1 :], tools, replies, self.history)
                    yield ConfirmationNeeded(call, server)
                    return
                answer = yield from self._observe(call)
                self.history.append(answer)
                yield MessageDone(answer)
            if self._stop.is_set():
                return
            if replies >= rounds:
                yield Notice(
                    f"Stopped after {rounds} rounds: the model kept calling tools without giving an answer. "
                    "Ask again, or allow more rounds (the Max rounds setting, --max-rounds on the CLI).",
                    "warning",
                )
                return
            replies += 1
            try:
                reply = yield from self._reply(tools, force=force and replies == 1)
            except WorkbenchError:
                if replies == 1 and asked is not None:  # nothing was answered: take the message back
                    self.history.remove_if_last(asked)
                raise
            if reply is None:  # stopped
                return
            if replies == 1:  # the reply that read them first keeps them
                attachments.keep_sources(reply, self._sources)
            self.history.append(reply)
            yield MessageDone(reply)
            calls = [*reply.tool_calls, *invalid_calls(reply)]
            if not calls:
                return

    def _asks_first(self, call: ToolCall | InvalidCall) -> str | None:
        """The MCP server that wants the user's Run or Skip before ``call``, when this session asks."""
        if not self.options.ask_confirmation or isinstance(call, InvalidCall):
            return None
        if self.enabled is not None and call.name not in self.enabled:
            return None  # refused by the registry anyway
        return self.registry.needs_confirmation(call.name)

    def _reply(self, tools: list[dict[str, Any]], *, force: bool) -> Generator[Event, None, Message | None]:
        """Generate one assistant message; None if it was stopped before writing anything."""
        dialect = self.model.dialect
        opener = dialect.tool_call_open if tools else None
        before = ""
        if not (force and opener):
            marker = opener.strip() if opener else ""
            held = _HeldBackText([marker, *dialect.stop_strings])
            stream = self._start(tools, stop_strings=(marker,) if marker else ())
            recorded = False
            shown = ""
            try:
                yield from waiting_events(stream)
                for chunk in stream:
                    delta = held.feed(chunk)
                    if delta:
                        shown += delta
                        self.history.draft(shown)  # a store checkpoints what was shown
                        yield TextDelta(delta)
                # A backend that cannot continue a prefix (a chat server) wrote any call in full already.
                whole = not self.model.capabilities.prompt_prefix
                if whole or not (marker and marker in stream.text) or self._stop.is_set():
                    tail = held.flush()
                    if tail:
                        yield TextDelta(tail)
                    recorded = True
                    return self._finish(dialect, stream, stream.text, tools)
                before = stream.text[: stream.text.index(marker)]
                recorded = True
            finally:
                if not recorded:  # the consumer went away (a stopped script): keep the partial text
                    self._keep_partial(stream)
        assert opener is not None
        # No repetition penalty inside a call: JSON repeats its punctuation, and arguments copy the question.
        settings = self.settings.with_(repetition_penalty=1.0)
        stream = self._start(tools, settings, prefix=before + opener, json_schema=call_schema(tools))
        try:
            yield from waiting_events(stream)
            stream.result()
        except GeneratorExit:  # the consumer went away while the call waited for a slot
            stream.halt()
            message = self._stopped_message(before, stream)
            if message is not None:
                self.history.append(message)
            raise
        finally:
            self._stream = None
        if stream.cancelled:
            return self._stopped_message(before, stream)
        return self._finish(dialect, stream, before + opener + stream.text + dialect.tool_call_close, tools)

    def _start(
        self, tools: list[dict[str, Any]], settings: SamplingSettings | None = None, **kwargs: Any
    ) -> GenerationStream:
        stream = self.model.stream(
            attachments.with_question(self.conversation(), self._question),
            settings or self.settings,
            tools=tools or None,
            **kwargs,
        )
        self._stream = stream
        if self._stop.is_set():
            stream.cancel()
        return stream

    def _finish(
        self, dialect: Dialect, stream: GenerationStream, text: str, tools: list[dict[str, Any]]
    ) -> Message | None:
        self._stream = None
        if stream.cancelled:
            return self._stopped_message(text, stream)
        if tools:
            message = dialect.parse(text)
        else:  # tools are off: whatever looks like a call is just text
            message = Message(Role.ASSISTANT, strip_stop_strings(text, dialect.stop_strings).strip())
        message.stats = stream.stats.to_dict()
        if stream.stats.finish_reason == "length" and invalid_calls(message):
            message.metadata["note"] = "The call was cut off by the max new tokens limit."
        return message

    def _stopped_message(self, text: str, stream: GenerationStream) -> Message | None:
        """The message kept when the user stops: the text so far, never a half-written call."""
        opener = (self.model.dialect.tool_call_open or "").strip()
        if opener and opener in text:
            text = text[: text.index(opener)]
        text = strip_stop_strings(text, self.model.dialect.stop_strings).strip()
        if not text:
            return None
        return Message(Role.ASSISTANT, text, stopped=True, stats=stream.stats.to_dict())

    def _keep_partial(self, stream: GenerationStream) -> None:
        stream.halt()
        self._stream = None
        message = self._stopped_message(stream.text, stream)
        if message is not None:
            self.history.append(message)

    def _observe(
        self, call: ToolCall | InvalidCall, *, confirmed: bool = False
    ) -> Generator[Event, None, Message]:
        """Run one call, yielding its progress, and return its observation message (never raises).

        If the consumer goes away meanwhile (Stop in the app), the call is cancelled and what is known
        of it is recorded as its observation.
        """
        if isinstance(call, InvalidCall):
            return Message(
                Role.OBSERVATION,
                call.error,
                name=call.name or "unknown",
                error=True,
                tool_call_id=call.id,
                metadata={"error_type": MALFORMED_CALL, "call_text": call.text},
            )
        running = RunningCall(
            self.registry,
            call,
            enabled=self.enabled,
            timeout=self.options.call_timeout_s,
            confirmed=confirmed,
        )
        self._running = running
        try:
            result = yield from running.progress()
        except GeneratorExit:
            ended = running.cancel()
            limit = self.options.max_result_chars
            self.history.append(stopped(call) if ended is None else observation(call, ended, limit))
            raise
        finally:
            self._running = None
        return observation(call, result, self.options.max_result_chars)
