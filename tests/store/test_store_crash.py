"""Crash safety: a writer killed with SIGKILL in the middle of its writes loses nothing it committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Callable

import pytest

from workbench.messages import Message, Role
from workbench.store import ConversationStore


def kill_after(writer: subprocess.Popen[str], commits: int) -> list[str]:
    """Read the writer's lines until ``commits`` commits were reported, then SIGKILL it."""
    assert writer.stdout is not None
    lines: list[str] = []
    try:
        while len([line for line in lines if line.startswith("committed")]) < commits:
            line = writer.stdout.readline()
            if not line:
                raise AssertionError(
                    f"the writer ended early: {writer.stderr.read() if writer.stderr else ''}"
                )
            lines.append(line.strip())
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    return lines


def check_sqlite_file(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            connection.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_mid_turn_keeps_every_committed_message(
    database: str, request: pytest.FixtureRequest, start_writer: Callable[..., subprocess.Popen[str]]
) -> None:
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_db")
    ConversationStore.open(url).close()  # migrated before the writer starts
    lines = kill_after(start_writer(url, "turns"), commits=150)
    conversation_id = lines[0].removeprefix("id ")
    reported = int(lines[-1].removeprefix("committed "))
    check_sqlite_file(url)
    with ConversationStore.open(url) as store:
        info, messages = store.get(conversation_id)
        # Everything reported is there; at most the one being written when killed is there too.
        assert reported + 1 <= len(messages) <= reported + 2
        assert info.message_count == len(messages)
        for position, message in enumerate(messages):
            assert message.content.startswith(f"message {position} ")
        store.append(conversation_id, len(messages), Message(Role.USER, "after the crash"))
        assert store.get(conversation_id)[1][-1].content == "after the crash"
        assert store.search("crash")[0].id == conversation_id


def test_killed_mid_import_leaves_no_half_conversation(
    sqlite_url: str, start_writer: Callable[..., subprocess.Popen[str]]
) -> None:
    ConversationStore.open(sqlite_url).close()
    lines = kill_after(start_writer(sqlite_url, "imports"), commits=3)
    check_sqlite_file(sqlite_url)
    with ConversationStore.open(sqlite_url) as store:
        saved = store.list(limit=100)
        assert {line.removeprefix("committed ") for line in lines} <= {info.id for info in saved}
        for info in saved:
            assert info.message_count == 500 and len(store.get(info.id)[1]) == 500
