"""Concurrent writers on one database: threads of one process and several processes, no lock errors."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

import pytest

from workbench.messages import Message, Role
from workbench.store import ConversationStore


def test_threads_write_at_once(store: ConversationStore) -> None:
    shared = store.create("chat", title="shared")
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            info = store.create("chat", title=f"thread {number}")
            for position in range(30):
                store.append(info.id, position, Message(Role.USER, f"t{number} m{position}"))
                store.rename(shared.id, f"renamed by {number}")
                store.list(limit=10)
        except BaseException as exc:  # report every failure, not only the first thread's
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 9
    for info in store.list():
        if info.id != shared.id:
            assert [m.content for m in store.get(info.id)[1]] == [
                f"t{info.title.split()[1]} m{p}" for p in range(30)
            ]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_processes_write_at_once(
    database: str, request: pytest.FixtureRequest, start_writer: Callable[..., subprocess.Popen[str]]
) -> None:
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_db")
    ConversationStore.open(url).close()
    writers = [start_writer(url, "append", "60", f"proc{n}") for n in range(3)]
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
        assert out.strip() == "done"
        assert "locked" not in err
    with ConversationStore.open(url) as store:
        for n in range(3):
            info, messages = store.get(f"proc{n}")
            assert [m.content for m in messages] == [f"proc{n} {p}" for p in range(60)]
            assert info.title == f"proc{n} at 59"
