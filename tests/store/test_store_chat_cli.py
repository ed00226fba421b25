"""``chat --save`` / ``--resume`` in the terminal: a copy is announced, and a failed save never lands
inside an answer (a scripted model; the real store)."""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import workbench.cli.chat as chat_command
from tests.cli_helpers import run_main
from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.messages import Message, Role
from workbench.store import ConversationStore

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("chat_driver.py")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(folder))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    return folder


class OtherWriterFirst(io.StringIO):
    """Standard input; before the first line is read, another program changes the conversation.

    It writes a message after the last one, or (``delete``) deletes the last answer.
    """

    def __init__(self, text: str, conversation_id: str, *, delete: bool = False) -> None:
        super().__init__(text)
        self.conversation_id = conversation_id
        self.delete = delete
        self.done = False

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if not self.done:
            self.done = True
            with ConversationStore.open() as store:  # another process would open its own store
                _info, thread = store.get(self.conversation_id)
                if self.delete:
                    store.delete_messages(self.conversation_id, [thread[-1].id], thread[-2].id)
                else:
                    store.append(
                        self.conversation_id, len(thread), Message(Role.USER, "written in a browser tab")
                    )
        return super().readline(size if size is not None else -1)


def _resume_while_another_writes(monkeypatch: pytest.MonkeyPatch, *, delete: bool) -> tuple[str, str]:
    """Resume a saved chat ("Colours") while another program writes to it (or deletes its answer) first.

    Returns:
        The conversation's id, and what the chat wrote on standard error.
    """
    with ConversationStore.open() as store:
        info = store.create("chat", title="Colours")
        store.save_all(info.id, [Message(Role.USER, "Name a colour."), Message(Role.ASSISTANT, "Red.")])
    backend = ScriptedBackend("Blue.", chunk_chars=None, context_length=100_000)
    monkeypatch.setattr(
        chat_command, "load_chat_model", lambda args, err: ChatModel(backend, dialect=PlainDialect())
    )
    out, err = io.StringIO(), io.StringIO()
    stdin = OtherWriterFirst("Another one?\nstop\n", info.id, delete=delete)
    status = chat_command.run_chat(_chat_args("--resume", info.id[:8]), stdin, out, err)
    assert status == 0, err.getvalue()
    assert "Assistant: Blue.\n" in out.getvalue()
    return info.id, err.getvalue()


def test_resume_while_another_program_writes_keeps_both_as_branches(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id, err = _resume_while_another_writes(monkeypatch, delete=False)
    with ConversationStore.open() as store:
        assert [i.id for i in store.list()] == [conversation_id]  # no copy
        _info, nodes, _current = store.get_tree(conversation_id)
        shown = [m.content for m in store.get(conversation_id)[1]]
    assert shown == ["Name a colour.", "Red.", "Another one?", "Blue."]
    assert "written in a browser tab" in [
        m.content for m, _ in nodes
    ]  # the other writer's kept, as a sibling
    assert "goes on as a copy" not in err


def test_resume_says_when_the_chat_goes_on_as_a_copy(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation_id, err = _resume_while_another_writes(monkeypatch, delete=True)
    with ConversationStore.open() as store:
        [copy] = [i for i in store.list() if i.id != conversation_id]
        original = [m.content for m in store.get(conversation_id)[1]]
        copied = [m.content for m in store.get(copy.id)[1]]
    assert original == ["Name a colour."]  # the other writer's deletion stands
    assert copied == ["Name a colour.", "Red.", "Another one?", "Blue."] and copy.title == "Colours (copy)"
    notice = [line for line in err.splitlines() if "goes on as a copy" in line]
    assert notice == [
        f"[workbench] Conversation {conversation_id} was changed by another tab or program since this chat opened it; "
        f"this chat goes on as a copy: {copy.id} (python -m workbench history show {copy.id[:8]}). Both are kept."
    ]


def _chat_args(*extra: str) -> argparse.Namespace:
    from workbench.cli.parser import build_parser

    return build_parser().parse_args(["chat", *extra])


def test_a_failed_save_is_reported_after_the_answer_never_inside_it(data_dir: Path) -> None:
    ConversationStore.open().close()  # the database exists; compact it so that it has no free page
    database = data_dir / "conversations.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("VACUUM")
    reply = "A long answer " + "word " * 3000  # long rows need new pages: the full "disk" refuses them
    question = "Tell me " + "more " * 3000
    done = subprocess.run(
        [sys.executable, "-u", str(DRIVER), reply, "--full-disk", "--", "chat", "--save"],
        input=f"{question}\nstop\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as on a terminal: the order is what a user sees
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    # A pipe does not echo the question, so the prompt "User: " stands before the answer's line.
    answer = next(i for i, line in enumerate(lines) if "Assistant: " in line)
    assert lines[answer].split("Assistant: ", 1)[1].strip() == reply.strip()  # nothing else on its line
    assert lines[answer].split("Assistant: ", 1)[0] == "User: "
    warnings = [line for line in lines if "was not saved" in line]
    assert warnings and all(line.startswith("[workbench] Conversation ") for line in warnings), lines
    assert "database or disk is full" in warnings[0]
    assert all(lines.index(line) > answer for line in warnings)  # held until the answer ended
    assert not any("Traceback" in line for line in lines)


def test_history_import_of_a_good_file_still_works(data_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"messages": [{"role": "user", "content": "hi"}]}')
    status, out, err = run_main("history", "import", str(good))
    assert status == 0 and out.startswith("Imported ") and err == ""


def _branched_saved() -> tuple[str, Message]:
    """A saved chat whose shown branch is the older answer (1/2): q -> a1 (shown), q -> a2."""
    with ConversationStore.open() as store:
        info = store.create("chat", title="Branches")
        question, first = Message(Role.USER, "Name a colour."), Message(Role.ASSISTANT, "Red.")
        store.save_all(info.id, [question, first])
        store.append(info.id, 1, Message(Role.ASSISTANT, "Green."))  # a regenerated sibling, now shown
        store.set_current(info.id, first.id)  # the user paged back to 1/2
        return info.id, first


def test_resume_continues_the_shown_branch(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation_id, _first = _branched_saved()
    backend = ScriptedBackend("Blue.", chunk_chars=None, context_length=100_000)
    monkeypatch.setattr(
        chat_command, "load_chat_model", lambda args, err: ChatModel(backend, dialect=PlainDialect())
    )
    out, err = io.StringIO(), io.StringIO()
    status = chat_command.run_chat(
        _chat_args("--resume", conversation_id), io.StringIO("Another?\nstop\n"), out, err
    )
    assert status == 0, err.getvalue()
    with ConversationStore.open() as store:
        shown = [m.content for m in store.get(conversation_id)[1]]
    assert shown == ["Name a colour.", "Red.", "Another?", "Blue."]


def test_history_show_tree_and_fork(data_dir: Path) -> None:
    conversation_id, _first = _branched_saved()
    status, out, _err = run_main("history", "show", conversation_id[:8], "--tree")
    assert status == 0, _err
    lines = out.splitlines()
    assert "3 messages; * the shown branch" in lines[0]
    assert [line.startswith("*") for line in lines[1:]] == [True, True, False]
    assert "Red. [1/2]" in lines[2] and "Green. [2/2]" in lines[3]
    status, out, _err = run_main("history", "show", conversation_id[:8])
    assert "Red." in out and "Green." not in out  # the shown branch
    status, out, _err = run_main("history", "fork", conversation_id[:8], "--at", "1")
    assert status == 0 and out.startswith("Forked into ") and "Branches (branch)" in out
    fork_id = out.split()[2]
    with ConversationStore.open() as store:
        assert [m.content for m in store.get(fork_id)[1]] == ["Name a colour."]
        assert len(store.get_tree(conversation_id)[1]) == 3  # the original is untouched
    status, _out, err = run_main("history", "fork", conversation_id[:8], "--at", "9")
    assert status != 0 and "has 2 messages; give --at between 1 and 2" in err


def _too_long_then_stop(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """Chat with ``args``: one message too long for the (scripted) model's context, then stop."""
    backend = ScriptedBackend("Never sent.", context_length=64)
    monkeypatch.setattr(
        chat_command, "load_chat_model", lambda args, err: ChatModel(backend, dialect=PlainDialect())
    )
    out, err = io.StringIO(), io.StringIO()
    status = chat_command.run_chat(_chat_args(*args), io.StringIO("word " * 200 + "\nstop\n"), out, err)
    assert status == 0 and "Assistant:" not in out.getvalue()
    assert "Error: The conversation is too long" in err.getvalue()


def test_a_new_chat_whose_only_message_was_refused_is_not_saved(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _too_long_then_stop(monkeypatch, "--save")
    with ConversationStore.open() as store:
        assert store.list() == [] and store.list(deleted=True) == []


def test_a_resumed_chat_is_untouched_by_a_refused_message(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ConversationStore.open() as store:
        empty = store.create("chat", title="Emptied")  # cleared earlier, say: still the user's, kept
        colours = store.create("chat", title="Colours")
        store.save_all(colours.id, [Message(Role.USER, "Name a colour."), Message(Role.ASSISTANT, "Red.")])
    _too_long_then_stop(monkeypatch, "--resume", empty.id[:8])
    _too_long_then_stop(monkeypatch, "--resume", colours.id[:8])
    with ConversationStore.open() as store:
        assert {(i.id, i.title, i.message_count) for i in store.list()} == {
            (empty.id, "Emptied", 0),
            (colours.id, "Colours", 2),
        }
        assert [m.content for m in store.get(colours.id)[1]] == ["Name a colour.", "Red."]
