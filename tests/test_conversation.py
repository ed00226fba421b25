"""The Conversation: one locked way to change a history, listeners, titles and times."""

from __future__ import annotations

import ast
import json
import sys
import threading
from datetime import UTC
from pathlib import Path

import pytest

from workbench.conversation import (
    Appended,
    BranchDeleted,
    Cleared,
    Conversation,
    HistoryChange,
    Mode,
    TitleChanged,
    title_from,
)
from workbench.errors import TranscriptError
from workbench.messages import Message, Role


def test_a_new_conversation_has_an_id_a_mode_and_utc_times():
    first, second = Conversation(Mode.TOOL), Conversation("code")  # type: ignore[arg-type]
    assert len(first.id) == 32 and int(first.id, 16) >= 0 and first.id != second.id
    assert first.mode is Mode.TOOL and second.mode is Mode.CODE
    assert first.created.tzinfo is UTC and first.updated >= first.created
    assert first.title == "" and first.messages == [] and len(first) == 0


def test_every_change_is_announced_in_order():
    conversation = Conversation()
    changes: list[HistoryChange] = []
    unsubscribe = conversation.subscribe(changes.append)
    hello, reply = Message(Role.USER, "Hello"), Message(Role.ASSISTANT, "Hi")
    assert conversation.append(hello) == 0 and conversation.append(reply) == 1
    assert conversation.remove_if_last(reply) and conversation.remove_if_last(hello)
    assert not conversation.remove_if_last(hello)
    conversation.append(hello)
    conversation.clear()
    conversation.set_title("  Two\n lines ")
    unsubscribe()
    conversation.append(reply)
    assert changes == [
        Appended(0, hello, None),
        TitleChanged("Hello"),
        Appended(1, reply, hello.id),
        BranchDeleted((reply.id,), hello.id, 1),
        BranchDeleted((hello.id,), None, 0),
        TitleChanged(""),  # the title it made goes with it
        Appended(0, hello, None),
        TitleChanged("Hello"),
        Cleared(),
        TitleChanged("Two lines"),
    ]


def test_remove_if_last_takes_back_only_that_message():
    conversation = Conversation()
    asked, other = Message(Role.USER, "q"), Message(Role.USER, "q")
    conversation.append(asked)
    assert not conversation.remove_if_last(other)  # equal but not the same message
    assert conversation.remove_if_last(asked) and conversation.messages == []


def test_taking_back_the_message_that_made_the_title_takes_the_title_back():
    conversation, refused = Conversation(), Message(Role.USER, "word " * 100)
    conversation.append(refused)
    assert conversation.remove_if_last(refused) and conversation.title == ""  # a new conversation again
    conversation.append(Message(Role.USER, "Short question"))
    assert conversation.title == "Short question"  # titled after the message kept
    conversation.append(refused)
    assert conversation.remove_if_last(refused) and conversation.title == "Short question"
    named, refused = Conversation(title="Mine"), Message(Role.USER, "word " * 100)
    named.append(refused)
    assert named.remove_if_last(refused) and named.title == "Mine"  # a title of its own stays
    renamed, refused = Conversation(), Message(Role.USER, "word " * 100)
    renamed.append(refused)
    renamed.set_title("Chosen")
    assert renamed.remove_if_last(refused) and renamed.title == "Chosen"


def test_messages_is_a_copy():
    conversation = Conversation()
    conversation.append(Message(Role.USER, "q"))
    conversation.messages.clear()
    conversation.snapshot().append(Message(Role.USER, "x"))
    assert len(conversation) == 1 and conversation.last() == Message(Role.USER, "q")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Plot sin(x)", "Plot sin(x)"),
        ("\n\n  first   line \nsecond", "first line"),
        ("x" * 100, "x" * 59 + "…"),
        ("   ", ""),
        ("\x00\t tab\tand NUL", "\x00 tab and NUL"),
    ],
)
def test_the_title_is_one_short_line_of_the_first_user_message(text, title):
    assert title_from(text) == title


def test_the_title_comes_from_the_first_user_message_only():
    conversation = Conversation()
    conversation.append(Message(Role.SYSTEM, "Be brief."))
    conversation.append(Message(Role.USER, "First question"))
    conversation.append(Message(Role.USER, "Second question"))
    assert conversation.title == "First question"


def test_concurrent_appends_lose_nothing_and_indexes_are_unique():
    conversation = Conversation()
    indexes: list[int] = []
    conversation.subscribe(
        lambda change: indexes.append(change.index) if isinstance(change, Appended) else None
    )

    def work() -> None:
        for i in range(200):
            conversation.append(Message(Role.ASSISTANT, str(i)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(conversation) == 800 and sorted(indexes) == list(range(800))


def test_a_listener_may_read_the_history_without_deadlock():
    conversation = Conversation()
    seen: list[int] = []
    conversation.subscribe(lambda change: seen.append(len(conversation.snapshot())))
    conversation.append(Message(Role.ASSISTANT, "a"))
    assert seen == [1]


@pytest.mark.parametrize("module", ["messages", "conversation", "openai_messages", "execution_record"])
def test_the_conversation_modules_depend_only_on_the_standard_library_and_each_other(module):
    allowed = {
        "workbench.messages",
        "workbench.errors",
        "workbench.execution_record",
        "workbench.conversation",
        "workbench.images",  # a leaf: errors, and Pillow and kernel.outputs inside its functions
    }
    tree = ast.parse(Path(f"workbench/{module}.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= allowed


def test_a_conversation_round_trips_through_json_with_its_identity():
    conversation = Conversation(Mode.TOOL)
    conversation.append(Message(Role.USER, "Weather in Paris?"))
    data = json.loads(json.dumps(conversation.to_dict()))
    back = Conversation.from_dict(data)
    assert (back.id, back.mode, back.title) == (conversation.id, Mode.TOOL, "Weather in Paris?")
    assert (back.created, back.updated) == (conversation.created, conversation.updated)
    assert back.messages == conversation.messages


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], "must be a JSON object"),
        ({"mode": "draw"}, "Unknown conversation mode 'draw'; use one of: chat, tool, code."),
        ({"mode": "chat", "id": 3}, "needs a string 'id'"),
        ({"mode": "chat", "id": "a", "messages": {}}, "a list of 'messages'"),
        ({"mode": "chat", "id": "a", "created": 5}, "must be ISO 8601 times"),
        ({"mode": "chat", "id": "a", "created": "yesterday"}, "'yesterday' is not an ISO 8601 time"),
        (
            {
                "mode": "chat",
                "id": "a",
                "created": "2026-01-01",
                "updated": "2026-01-01",
                "messages": [{"role": "x"}],
            },
            "Unknown role 'x'",
        ),
    ],
)
def test_a_hostile_conversation_gets_a_clear_transcript_error(data, error):
    with pytest.raises(TranscriptError) as info:
        Conversation.from_dict(data)
    assert error in str(info.value)


def test_a_time_without_a_zone_is_read_as_utc():
    data = {
        "mode": "chat",
        "id": "a",
        "created": "2026-01-01T10:00:00",
        "updated": "2026-01-01T12:00:00+02:00",
    }
    back = Conversation.from_dict(data)
    assert back.created.tzinfo is UTC and back.updated == back.created
