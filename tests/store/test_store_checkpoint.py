"""Nothing streamed is lost: an answer being written is checkpointed about once a second.

A unit test of the recorder on a conversation drafted by hand, the three loops announcing their
drafts, and a real SIGKILL of ``ask --save`` in the middle of a streamed answer (from a slow scripted
server, so the answer is long and its text known), then the conversation reopened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.scripted import PlainDialect, ScriptedBackend
from tests.server.fake_openai import SlowStory
from workbench.chat_model import ChatModel
from workbench.conversation import Conversation, Drafted, HistoryChange, Mode
from workbench.messages import Message, Role
from workbench.modes.chat import ChatSession
from workbench.store import ConversationStore
from workbench.store import recorder as recorder_module
from workbench.store.recorder import INTERRUPTED, ConversationRecorder
from workbench.store.reopen import load_conversation

ROOT = Path(__file__).resolve().parents[2]
WORDS = [f"word{i:03d} " for i in range(400)]


def test_a_streaming_answer_is_checkpointed_then_replaced(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "CHECKPOINT_S", 0.5)  # wide: a loaded machine writes slowly
    conversation = Conversation(Mode.CHAT)
    with ConversationStore.open(sqlite_url) as store, ConversationStore.open(sqlite_url) as reader:
        ConversationRecorder.attach(store, conversation)
        conversation.append(Message(Role.USER, "Tell me a story"))
        conversation.draft("Once")  # the first piece starts the clock: nothing written yet
        assert len(reader.get(conversation.id)[1]) == 1
        time.sleep(0.6)
        conversation.draft("Once upon")
        saved = reader.get(conversation.id)[1]
        assert [m.role for m in saved] == [Role.USER, Role.ASSISTANT]
        assert saved[1].content == "Once upon" and saved[1].failure == INTERRUPTED
        assert saved[1].metadata == {"interrupted": True}
        conversation.draft("Once upon a")  # within the interval: not written
        assert reader.get(conversation.id)[1][1].content == "Once upon"
        time.sleep(0.6)
        conversation.draft("Once upon a time")
        assert reader.get(conversation.id)[1][1].content == "Once upon a time"
        conversation.append(Message(Role.ASSISTANT, "Once upon a time, the end."))
        info, saved = reader.get(conversation.id)
        assert info.message_count == 2 and saved[1].content == "Once upon a time, the end."
        assert saved[1].failure is None and not saved[1].metadata
        conversation.append(Message(Role.USER, "Again"))  # the next rows follow as usual
        assert [m.content for m in reader.get(conversation.id)[1]] == [
            "Tell me a story",
            "Once upon a time, the end.",
            "Again",
        ]


def test_a_checkpoint_never_outlives_its_turn(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "CHECKPOINT_S", 0.0)
    conversation = Conversation(Mode.CHAT)
    with ConversationStore.open(sqlite_url) as store:
        ConversationRecorder.attach(store, conversation)
        conversation.append(Message(Role.USER, "Hi"))
        conversation.draft("Hel")
        conversation.draft("Hello")
        assert len(store.get(conversation.id)[1]) == 2
        # The answer never joined the history (a reply stopped with nothing kept): the next message takes its row.
        conversation.append(Message(Role.USER, "Anyone?"))
        assert [m.content for m in store.get(conversation.id)[1]] == ["Hi", "Anyone?"]
        conversation.draft("Yes")
        conversation.draft("Yes, here")
        conversation.remove_if_last(conversation.messages[-1])  # a failed turn takes its question back
        assert [m.content for m in store.get(conversation.id)[1]] == ["Hi"]


def test_the_chat_loop_announces_its_draft() -> None:
    changes: list[HistoryChange] = []
    backend = ScriptedBackend("Hello there", chunk_chars=None)
    session = ChatSession(ChatModel(backend, dialect=PlainDialect()))
    session.history.subscribe(changes.append)
    list(session.send("Hi").text())
    drafts = [c for c in changes if isinstance(c, Drafted)]
    asked = session.messages[0]
    assert drafts and drafts[-1] == Drafted(1, "Hello there", asked.id) and all(d.index == 1 for d in drafts)


def test_ask_save_killed_mid_answer_keeps_all_but_the_last_second(tmp_path: Path) -> None:
    server = SlowStory(WORDS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_DATA_DIR": str(tmp_path)}
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DB_URL"):
        env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "workbench",
        "ask",
        "--save",
        "--model",
        f"openai:{server.url}#m",
        "Tell a story",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed: list[tuple[float, str]] = []  # (when, text so far)

    def read() -> None:
        assert process.stdout is not None
        text = ""
        while piece := os.read(process.stdout.fileno(), 4096):
            text += piece.decode()
            printed.append((time.monotonic(), text))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not printed or len(printed[-1][1]) < 60 * len(WORDS[0]):  # 60 words: 3 s into the answer
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(timeout=30)
    finally:
        server.close()
    reader.join(timeout=10)
    assert process.returncode == -signal.SIGKILL
    seen_at_kill = printed[-1][1]
    # What was on the screen 3 s (a generous bound on the 1 s interval) before the kill is saved.
    earlier = [text for when, text in printed if when <= killed_at - 3.0]
    with ConversationStore.open(f"sqlite:///{tmp_path / 'conversations.sqlite3'}") as store:
        (info,) = store.list()
        conversation = load_conversation(store, info.id)
    question, answer = conversation.messages
    assert (question.role, question.content) == (Role.USER, "Tell a story")
    assert (
        answer.role is Role.ASSISTANT and answer.metadata.get("interrupted") and answer.failure == INTERRUPTED
    )
    assert seen_at_kill.startswith(answer.content.strip()) and answer.content.strip()
    assert not earlier or answer.content.startswith(earlier[-1].strip())


def test_a_session_keeps_the_empty_conversation_it_is_given() -> None:
    """ask --save hands each loop a new, empty conversation with a recorder on it (an empty one is falsy)."""
    from tools import ToolRegistry
    from workbench.modes.tool import ToolSession

    model = ChatModel(ScriptedBackend("Hi.", chunk_chars=None), dialect=PlainDialect())
    chat, tool = Conversation(Mode.CHAT), Conversation(Mode.TOOL)
    assert ChatSession(model, history=chat).history is chat
    assert ToolSession(model, ToolRegistry(), history=tool).history is tool
