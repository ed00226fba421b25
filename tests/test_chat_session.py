"""The chat loop (send, stop, regenerate, clear, failures) driven by a small scripted backend."""

from __future__ import annotations

import time

import pytest

from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.conversation import Appended, Drafted, HistoryChange, Mode, Regenerating, TitleChanged
from workbench.errors import EmptyPromptError, GenerationError, PromptTooLongError
from workbench.messages import Role
from workbench.modes.chat import ChatSession
from workbench.modes.events import MessageDone, TextDelta


def session_with(*replies: str | BaseException, delay_s: float = 0.0, system: str = "") -> ChatSession:
    backend = ScriptedBackend(*replies, delay_s=delay_s, chunk_chars=None, context_length=1000)
    return ChatSession(ChatModel(backend, dialect=PlainDialect()), system_prompt=system)


def pairs(session: ChatSession) -> list[tuple[str, str]]:
    return [(m.role.value, m.content) for m in session.messages]


def test_send_streams_the_reply_and_records_both_messages():
    session = session_with("Paris is the capital.")
    turn = session.send("Capital of France?")
    assert session.busy
    assert "".join(turn.text()) == "Paris is the capital."
    assert not session.busy
    assert pairs(session) == [("user", "Capital of France?"), ("assistant", "Paris is the capital.")]
    stats = session.messages[-1].stats
    assert stats is not None and stats["new_tokens"] == 4 and stats["finish_reason"] == "eos"
    assert not session.messages[-1].stopped


def test_system_prompt_goes_first_and_history_follows():
    session = session_with("One.", "Two.", system="Be brief.")
    list(session.send("first"))
    list(session.send("second"))
    backend = ScriptedBackend.of(session.model)
    assert backend.prompts[1] == "system: Be brief.\nuser: first\nassistant: One.\nuser: second\nassistant:"
    roles = [m.role for m in session.conversation()]
    assert roles == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_message_is_refused_and_nothing_recorded(text):
    session = session_with("unused")
    with pytest.raises(EmptyPromptError) as info:
        session.send(text)
    assert str(info.value) == "The message is empty; type something to send."
    assert session.messages == []


def test_stop_keeps_the_partial_reply():
    session = session_with(" ".join(f"w{i}" for i in range(200)), delay_s=0.01)
    turn = session.send("Tell me a long story")
    seen = []
    for chunk in turn.text():
        seen.append(chunk)
        if len(seen) == 3:
            turn.stop()
    reply = session.messages[-1]
    assert reply.stopped is True
    assert reply.stats is not None and reply.stats["finish_reason"] == "cancelled"
    assert reply.content.startswith("w0 w1 w2")
    assert len(reply.content.split()) < 20


def test_a_turn_nobody_reads_is_stopped_and_kept_when_closed():
    """A Streamlit script stopped by the user: the next run calls session.stop()."""
    session = session_with(" ".join(f"w{i}" for i in range(500)), delay_s=0.01)
    turn = session.send("Tell me a long story")
    time.sleep(0.1)
    session.stop()
    assert turn.message is not None and turn.message.stopped is True
    assert pairs(session)[0] == ("user", "Tell me a long story")
    assert 0 < len(session.messages[-1].content.split()) < 500
    session.stop()  # idempotent


def test_sending_while_a_reply_runs_stops_it_first():
    session = session_with(" ".join(["word"] * 500), "Second answer.", delay_s=0.01)
    first = session.send("first")
    second = session.send("second")
    assert first.message is not None and first.message.stopped is True
    assert "".join(second.text()) == "Second answer."
    assert [role for role, _ in pairs(session)] == ["user", "assistant", "user", "assistant"]


def test_regenerate_replaces_the_last_reply():
    session = session_with("First try.", "Second try.")
    list(session.send("hello"))
    turn = session.regenerate()
    assert "".join(turn.text()) == "Second try."
    assert pairs(session) == [("user", "hello"), ("assistant", "Second try.")]
    prompts = ScriptedBackend.of(session.model).prompts
    assert prompts[0] == prompts[1] == "user: hello\nassistant:"


def test_regenerate_with_nothing_sent():
    session = session_with()
    with pytest.raises(EmptyPromptError) as info:
        session.regenerate()
    assert str(info.value) == "Nothing to regenerate yet: send a message first."


def test_clear_empties_history_but_keeps_system_prompt_and_settings():
    session = session_with("Hi.", " ".join(["word"] * 500), delay_s=0.01, system="Be brief.")
    session.settings = session.settings.with_(temperature=0.0)
    list(session.send("hello"))
    running = session.send("tell me more")
    session.clear()
    assert session.messages == [] and not session.busy
    assert running.message is not None  # the running reply was stopped, not left generating
    assert running.stream.done.is_set()
    assert session.system_prompt == "Be brief." and session.settings.temperature == 0.0


def test_a_failed_generation_leaves_the_history_usable():
    session = session_with("Fine.", RuntimeError("CUDA out of memory"), "Still here.")
    list(session.send("one"))
    with pytest.raises(GenerationError) as info:
        list(session.send("two"))
    assert str(info.value) == "Generation failed: CUDA out of memory. Try again, or lower max new tokens."
    failed = session.messages[-1]
    assert failed.failure == "CUDA out of memory"
    assert "".join(session.send("three").text()) == "Still here."
    assert pairs(session)[:2] == [("user", "one"), ("assistant", "Fine.")]
    assert pairs(session)[-2:] == [("user", "three"), ("assistant", "Still here.")]


def test_a_prompt_too_long_is_taken_back():
    session = session_with("Fine.")
    list(session.send("short"))
    with pytest.raises(PromptTooLongError):
        session.send("word " * 300)
    assert pairs(session) == [("user", "short"), ("assistant", "Fine.")]
    assert not session.busy


def test_turn_as_context_manager_records_once():
    session = session_with("Done.")
    with session.send("hi") as turn:
        assert "".join(turn.text()) == "Done."
    assert turn.close() is turn.message
    assert len(session.messages) == 2


def test_a_turn_yields_the_same_events_as_the_tool_and_code_loops():
    session = session_with("Paris is the capital.")
    events = list(session.send("Capital of France?"))
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert "".join(e.text for e in events[:-1]) == "Paris is the capital."  # type: ignore[union-attr]
    done = events[-1]
    assert isinstance(done, MessageDone) and done.message is session.messages[-1]


def test_an_empty_stopped_reply_is_not_announced_or_recorded():
    session = session_with(" ".join(f"w{i}" for i in range(200)), delay_s=0.05)
    turn = session.send("story")
    turn.stop()
    events = list(turn)
    assert turn.message is not None and turn.message.stopped
    if turn.message.content:  # a token slipped in before the stop: kept and announced
        assert isinstance(events[-1], MessageDone) and session.messages[-1] is turn.message
    else:
        assert not any(isinstance(e, MessageDone) for e in events)
        assert [m.role for m in session.messages] == [Role.USER]


def test_every_history_change_goes_through_the_conversation():
    session = session_with("First try.", "Second try.", "x" * 5)
    changes: list[HistoryChange] = []
    session.history.subscribe(changes.append)
    list(session.send("Hello there\nsecond line"))
    session.regenerate().close()
    assert session.history.mode is Mode.CHAT and session.history.title == "Hello there"
    asked, first = session.history.nodes()[0][0], session.history.nodes()[1][0]
    assert Drafted(1, "First try.", asked.id) in changes  # the answer as it streams, for a store to checkpoint
    changes = [c for c in changes if not isinstance(c, Drafted)]  # drafts change nothing
    kinds = [type(c) for c in changes]
    assert kinds == [Appended, TitleChanged, Appended, Regenerating, Appended]
    assert changes[3] == Regenerating(asked.id, 1, first.id)  # the old answer stays, as a sibling
    session.messages.clear()  # a copy: the history is unchanged
    assert len(session.history) == 2 and session.history.node_count() == 3
