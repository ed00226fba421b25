"""The tool loop (ToolSession) driven by a scripted backend: calls, observations, bad calls, limits, stop."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.scripted import ScriptedBackend, call, hermes
from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.dialects import ChatGLM3Dialect, Dialect
from workbench.documents.errors import DocumentError
from workbench.errors import EmptyPromptError, PromptTooLongError
from workbench.messages import Message, Role, ToolCall, transcript_to_json
from workbench.modes.events import MessageDone, Notice, TextDelta
from workbench.modes.tool import MALFORMED_CALL, ToolOptions, ToolSession, call_schema
from workbench.modes.tool_steps import group_exchanges


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def boom(reason: str) -> str:
    """Fail on purpose.

    Args:
        reason: What to complain about.
    """
    raise ValueError(f"cannot {reason}")


def slow(seconds: float) -> str:
    """Sleep, then say done.

    Args:
        seconds: How long to sleep.
    """
    time.sleep(seconds)
    return "done"


def as_dict() -> dict[str, Any]:
    """Return a dict instead of text."""
    return {"a": [1, 2]}


def long_text(size: int) -> str:
    """Return a long text.

    Args:
        size: How many characters.
    """
    return "x" * size


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    tools = ToolRegistry(default_timeout=5.0)
    tools.load_builtins()
    for function in (add, boom, slow, as_dict, long_text):
        tools.add(function)
    return tools


def session_with(
    registry: ToolRegistry,
    *replies: str,
    dialect: Dialect | None = None,
    delay_s: float = 0.0,
    **options: Any,
) -> tuple[ToolSession, ScriptedBackend]:
    backend = ScriptedBackend(*replies, delay_s=delay_s)
    model = ChatModel(backend, dialect=dialect or hermes())
    return ToolSession(model, registry, options=ToolOptions(**options)), backend


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def done(events: list[Any]) -> list[Message]:
    return [e.message for e in events if isinstance(e, MessageDone)]


def test_required_forces_a_constrained_call_then_the_answer_streams(registry):
    session, backend = session_with(
        registry, call("calculator", expression="1234 + 4321"), "The answer is 5555.", tool_choice="required"
    )
    events = list(session.send("What is 1234 plus 4321?"))

    first, second = backend.requests
    assert first.prompt.endswith("<|im_start|>assistant\n<tool_call>\n")
    assert first.json_schema == call_schema(session.tool_schemas())
    assert [v["properties"]["name"]["const"] for v in first.json_schema["anyOf"]] == registry.names()
    assert second.json_schema is None and "<tool_call>" in second.stop_strings
    assert second.prompt.endswith(
        '<|im_start|>assistant\n<tool_call>\n{"name":"calculator","arguments":{"expression":"1234 + 4321"}}\n'
        "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n5555\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assistant, observation, answer = done(events)
    assert assistant.tool_calls == [ToolCall("calculator", {"expression": "1234 + 4321"})]
    assert (observation.role, observation.name, observation.content, observation.error) == (
        Role.OBSERVATION,
        "calculator",
        "5555",
        False,
    )
    assert answer.content == "The answer is 5555." and text_of(events) == "The answer is 5555."
    assert [m.role for m in session.messages] == [Role.USER, Role.ASSISTANT, Role.OBSERVATION, Role.ASSISTANT]
    assert events.index(MessageDone(observation)) < events.index(
        next(e for e in events if isinstance(e, TextDelta))
    )
    assert not session.busy


def test_the_transcript_shows_calls_and_observations_in_the_issue_format(registry):
    session, _ = session_with(
        registry, call("add", a=2, b=3), "Five.", call("boom", reason="x"), "Sorry.", tool_choice="required"
    )
    list(session.send("Go"))
    list(session.send("Again"))
    data = json.loads(transcript_to_json(session.messages))["messages"]
    assert [m["role"] for m in data] == ["user", "assistant", "observation", "assistant"] * 2
    call_id = session.messages[1].tool_calls[0].id
    assert data[1]["tool_calls"] == [{"id": call_id, "name": "add", "arguments": {"a": 2, "b": 3}}]
    assert data[2]["tool_call_id"] == call_id and call_id.startswith("call_")
    assert {k: data[2][k] for k in ("role", "name", "content")} == {
        "role": "observation",
        "name": "add",
        "content": "5",
    }
    assert "error" not in data[2]
    assert (
        data[6]["name"] == "boom"
        and data[6]["error"] is True
        and "ValueError: cannot x" in data[6]["content"]
    )


def test_auto_writes_freely_and_constrains_the_call_once_the_model_opens_one(registry):
    session, backend = session_with(
        registry,
        'Let me compute. <tool_call>\n{"name": "junk that is never used"',
        call("calculator", expression="2*3"),
        "It is 6.",
    )
    events = list(session.send("2 times 3?"))
    assert [r.json_schema is not None for r in backend.requests] == [False, True, False]
    assert backend.requests[1].prompt.endswith("<|im_start|>assistant\nLet me compute. <tool_call>\n")
    assistant, observation, answer = done(events)
    assert assistant.content == "Let me compute." and assistant.tool_calls == [
        ToolCall("calculator", {"expression": "2*3"})
    ]
    assert observation.content == "6" and answer.content == "It is 6."
    assert text_of(events) == "Let me compute. It is 6."  # the opener itself is never shown


def test_auto_without_a_call_is_one_streamed_answer(registry):
    session, backend = session_with(registry, "Hello there, no tools needed.")
    events = list(session.send("Hi"))
    assert len(backend.requests) == 1 and "<tools>" in backend.requests[0].prompt
    assert text_of(events) == "Hello there, no tools needed." and len(done(events)) == 1


def test_none_shows_no_tools_and_runs_nothing(registry):
    session, backend = session_with(
        registry, '<tool_call>\n{"name":"add","arguments":{"a":1,"b":2}}\n</tool_call>', tool_choice="none"
    )
    events = list(session.send("Hi"))
    request = backend.requests[0]
    assert (
        "<tools>" not in request.prompt
        and request.json_schema is None
        and "<tool_call>" not in request.stop_strings
    )
    [message] = done(events)
    assert message.tool_calls == [] and "add" in message.content


def test_the_loop_stops_after_max_rounds_with_a_clear_notice(registry):
    replies = [call("add", a=1, b=1)] + ["<tool_call>", call("add", a=1, b=1)] * 2
    session, backend = session_with(registry, *replies, tool_choice="required", max_rounds=3)
    events = list(session.send("Loop"))
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].level == "warning"
    assert "Stopped after 3 rounds" in notices[0].text and "Max rounds" in notices[0].text
    assert [m.role for m in session.messages].count(Role.OBSERVATION) == 3
    assert not backend.replies


BAD_CALLS = [
    (call("calculater", expression="1"), "UnknownToolError", ["no tool named 'calculater'", "calculator"]),
    ('{"name":"calculator","arguments":{"expression":"1+', MALFORMED_CALL, ["not valid JSON"]),
    ('{"name":"add","arguments":"1, 2"}', MALFORMED_CALL, ["must be a JSON object"]),
    (call("add", a=1), "InvalidArgumentsError", ["'b'"]),
    (call("add", a=1, b=2, c=3), "InvalidArgumentsError", ["'c'"]),
    (call("add", a=1, b="two"), "InvalidArgumentsError", ["'b'", "integer"]),
    (call("boom", reason="divide"), "ToolRaisedError", ["ValueError", "cannot divide"]),
    (call("slow", seconds=3), "ToolTimeoutError", ["'slow'", "0.3"]),
]


@pytest.mark.parametrize(("reply", "error_type", "phrases"), BAD_CALLS)
def test_a_bad_call_becomes_an_error_observation_and_the_loop_goes_on(registry, reply, error_type, phrases):
    session, _ = session_with(
        registry, reply, "Sorry about that.", tool_choice="required", call_timeout_s=0.3
    )
    events = list(session.send("Do it"))
    _, observation, answer = done(events)
    assert observation.role is Role.OBSERVATION and observation.error is True
    assert observation.metadata["error_type"] == error_type
    for phrase in phrases:
        assert phrase in observation.content
    assert answer.content == "Sorry about that."


def test_a_string_seven_is_coerced_and_non_text_results_become_json(registry):
    session, _ = session_with(
        registry, call("add", a="7", b=1), "8.", call("as_dict"), "ok", tool_choice="required"
    )
    observation = done(list(session.send("7+1")))[1]
    assert (observation.content, observation.error, observation.metadata["arguments"]) == (
        "8",
        False,
        {"a": 7, "b": 1},
    )
    observation = done(list(session.send("dict")))[1]
    assert json.loads(observation.content) == {"a": [1, 2]} and not observation.error


def test_a_switched_off_tool_is_not_offered_and_a_call_to_it_fails(registry):
    glm_call = "add\n```python\ntool_call(a=1, b=2)\n```"
    session, backend = session_with(registry, glm_call, "No.", dialect=ChatGLM3Dialect())
    session.set_enabled("add", False)
    assert "add" not in [t["function"]["name"] for t in session.tool_schemas()]
    assert session.is_enabled("calculator") and not session.is_enabled("add")
    events = list(session.send("1+2"))
    assert '"name": "add"' not in backend.requests[0].prompt
    observation = done(events)[1]
    assert observation.error and observation.metadata["error_type"] == "ToolDisabledError"
    assert "switched off" in observation.content


def test_several_calls_in_one_reply_each_get_an_observation_in_order(registry):
    reply = "\nBoth.<|assistant|>add\n```python\ntool_call(a=1, b=2)\n```<|assistant|>add\n```python\ntool_call(a=3, b=4)\n```"
    session, _ = session_with(registry, reply, "3 and 7.", dialect=ChatGLM3Dialect())
    assistant, first, second, answer = done(list(session.send("Add both")))
    assert len(assistant.tool_calls) == 2 and assistant.metadata["tool"] == "add"
    assert (first.content, second.content, answer.content) == ("3", "7", "3 and 7.")


def test_a_long_result_is_cut_for_the_model_with_a_visible_marker(registry):
    session, _ = session_with(
        registry, call("long_text", size=5000), "Long.", tool_choice="required", max_result_chars=100
    )
    observation = done(list(session.send("Long")))[1]
    assert observation.content.startswith("x" * 100) and "4900 more characters cut" in observation.content
    assert observation.metadata["full_length"] == 5000


def test_closing_the_events_mid_answer_keeps_the_partial_text(registry):
    session, _ = session_with(registry, "One two three four five six seven eight nine ten.", delay_s=0.02)
    events = session.send("Count")
    shown = ""
    for event in events:
        shown += event.text if isinstance(event, TextDelta) else ""
        if len(shown) >= 6:
            break
    events.close()  # what a stopped Streamlit script does through session.stop()
    last = session.messages[-1]
    assert last.role is Role.ASSISTANT and last.stopped is True
    assert last.content.startswith("One tw") and not session.busy


def test_stop_from_another_thread_during_a_call_records_no_half_call(registry):
    session, _ = session_with(
        registry, call("long_text", size=1) + " " * 300, delay_s=0.01, tool_choice="required"
    )
    threading.Timer(0.1, session.stop).start()
    events = list(session.send("Go"))
    assert done(events) == [] and [m.role for m in session.messages] == [Role.USER]
    assert not session.busy


def test_required_with_every_tool_off_says_so_and_answers(registry):
    session, backend = session_with(registry, "Plain answer.", tool_choice="required")
    session.enabled = set()
    events = list(session.send("Hi"))
    assert isinstance(events[0], Notice) and "no tool is switched on" in events[0].text
    assert backend.requests[0].json_schema is None and text_of(events) == "Plain answer."


def test_required_on_a_format_that_cannot_be_constrained_warns(registry):
    session, _ = session_with(registry, "\nJust text.", tool_choice="required", dialect=ChatGLM3Dialect())
    events = list(session.send("Hi"))
    assert isinstance(events[0], Notice) and "not enforced" in events[0].text


def test_an_empty_message_and_a_too_long_one(registry):
    session, _ = session_with(registry, "unused")
    with pytest.raises(EmptyPromptError, match="empty"):
        session.send("  ")
    with pytest.raises(PromptTooLongError):
        list(session.send("x" * 30_000))
    assert session.messages == []  # nothing was answered, so the message is taken back


class UnreadableDocuments:
    """Attached documents whose store cannot be read (a database gone, say)."""

    def __len__(self) -> int:
        return 1

    def sections(self) -> list[tuple[str, str, str]]:
        raise DocumentError("The attached documents could not be read; try again.")

    def search(self, query: str, k: int = 5) -> list[Any]:
        raise DocumentError("The attached documents could not be read; try again.")


def test_documents_that_cannot_be_searched_take_the_message_back(registry):
    session, _ = session_with(registry, "unused")
    session.documents = UnreadableDocuments()
    with pytest.raises(DocumentError, match="could not be read"):
        list(session.send("What do the files say?"))
    assert session.messages == []  # nothing was answered: the page keeps the text to send again


def test_the_call_schema_accepts_exactly_the_calls_validation_accepts(registry):
    schema = call_schema(registry.schemas(["add", "current_time"]))
    jsonschema.validate({"name": "add", "arguments": {"a": 1, "b": 2}}, schema)
    jsonschema.validate({"name": "current_time", "arguments": {}}, schema)
    for bad in (
        {"name": "nope", "arguments": {}},
        {"name": "add", "arguments": {"a": 1}},
        {"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}},
        {"name": "add"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    single = call_schema(registry.schemas(["random_number"]))
    assert "anyOf" not in single
    jsonschema.validate({"name": "random_number", "arguments": {"low": 1, "high": 2, "seed": None}}, single)


def test_each_observation_names_the_call_it_answers_and_the_page_pairs_them_by_id(registry):
    reply = "\nBoth.<|assistant|>add\n```python\ntool_call(a=1, b=2)\n```<|assistant|>add\n```python\ntool_call(a=3, b=4)\n```"
    session, _ = session_with(registry, reply, "3 and 7.", dialect=ChatGLM3Dialect())
    list(session.send("Two sums"))
    assistant, first, second = session.messages[1:4]
    assert [first.tool_call_id, second.tool_call_id] == [c.id for c in assistant.tool_calls]
    # Shuffled observations (as a server may return them) still pair by id; old ones without ids by position.
    steps = group_exchanges([session.messages[0], assistant, second, first])[0].replies[0].calls
    assert [s.observation for s in steps] == [first, second]
    old = [
        Message(m.role, m.content, name=m.name, tool_calls=m.tool_calls) for m in (assistant, first, second)
    ]
    steps = group_exchanges(old)[0].replies[0].calls
    assert [s.observation.content if s.observation else None for s in steps] == ["3", "7"]


def test_an_unreadable_call_is_answered_by_an_observation_with_its_id(registry):
    reply = "<|assistant|>add\n```python\ntool_call(1, 2)\n```"
    session, _ = session_with(registry, reply, "Sorry.", dialect=ChatGLM3Dialect())
    list(session.send("Go"))
    bad = session.messages[1].invalid_calls[0]
    assert session.messages[2].tool_call_id == bad.id and session.messages[2].error


def test_a_message_sent_while_tools_load_waits_for_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A user's tool file that takes a while to import: the registry loads in the background (as the page does).
    (tmp_path / "slow_tool.py").write_text(
        "import time\nfrom tools import tool\ntime.sleep(1.5)\n\n\n@tool\n"
        "def double(x: int) -> int:\n    '''Double a number.\n\n    Args:\n        x: The number.\n    '''\n"
        "    return 2 * x\n"
    )
    monkeypatch.delenv("WORKBENCH_TOOLS_PATH", raising=False)
    registry = ToolRegistry.from_env(extra_paths=[tmp_path], entry_points=False, wait=False)
    try:
        assert registry.loading
        session, _ = session_with(registry, call("double", x=21), "42.", tool_choice="required")
        events = list(session.send("Double 21."))
        notices = [e.text for e in events if isinstance(e, Notice)]
        assert notices[0] == "Waiting for the tools to finish loading before answering..."
        observation = next(m for m in done(events) if m.role is Role.OBSERVATION)
        assert (observation.name, observation.content, observation.error) == ("double", "42", False)
    finally:
        registry.close()


def test_regenerate_runs_the_calls_again_beside_the_old_answer_and_edit_answers_anew(registry):
    session, backend = session_with(
        registry, call("add", a=2, b=3), "Five.", call("add", a=2, b=3), "Still five.", call("add", a=4, b=4), "Eight.",
        tool_choice="required",
    )  # fmt: skip
    list(session.send("2+3?"))
    first_answer = session.messages[1]
    list(session.regenerate())  # the whole answer again: its call runs again
    assert [m.content for m in session.messages if m.role is Role.OBSERVATION] == ["5"]
    assert session.messages[-1].content == "Still five."
    assert session.history.siblings(first_answer.id) == [first_answer.id, session.messages[1].id]
    assert session.history.node_count() == 7
    asked = session.messages[0]
    list(session.edit(asked.id, "4+4?"))
    assert [m.content for m in session.messages] == ["4+4?", session.messages[1].content, "8", "Eight."]
    assert len(backend.requests) == 6
