"""The store's API on SQLite and on a real PostgreSQL: save, read, list, search, rename, delete, undo."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.execution_record import ExecutionRecord, OutputRecord
from workbench.messages import InvalidCall, Message, Role, ToolCall
from workbench.store import ConversationNotFoundError, ConversationStore, StoreError, make_title
from workbench.store.errors import ConversationConflictError


def _user(text: str) -> Message:
    return Message(Role.USER, text)


def test_a_full_message_round_trips(store: ConversationStore) -> None:
    info = store.create("code", model={"path": "embedded", "device": "cpu"})
    call = ToolCall("python", {"code": "plot()", "n": [1, 2]})
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    sent = [
        Message(Role.SYSTEM, "You are terse."),
        _user("Plot a sine wave ünïcödé ✓"),
        Message(Role.ASSISTANT, "", tool_calls=[call], invalid_calls=[InvalidCall("{bad", "not JSON", "f")]),
        Message(Role.OBSERVATION, "4", name="python", tool_call_id=call.id, metadata={"duration_s": 0.5}),
        Message(Role.ASSISTANT, "```python\nplot()\n```", interpreter=True, stats={"new_tokens": 12}),
        Message(
            Role.OBSERVATION,
            "Traceback ...",
            name="interpreter",
            error=True,
            images=[png],
            execution=ExecutionRecord(
                outputs=[OutputRecord("stream", "stdout", "hi\n"), OutputRecord("display", png=png)],
                error_name="ValueError",
                error_value="bad",
                duration=1.25,
                execution_count=3,
            ),
        ),
        Message(Role.ASSISTANT, "partial answ", stopped=True),
        Message(Role.ASSISTANT, "", failure="The model failed: out of memory."),
    ]
    for position, message in enumerate(sent):
        store.append(info.id, position, message)
    got_info, got = store.get(info.id)
    assert got == sent
    assert [call.id for m in got for call in m.tool_calls] == [call.id]  # ids are not compared by ==
    assert got_info.mode == "code"
    assert got_info.model == {"path": "embedded", "device": "cpu"}
    assert got_info.message_count == len(sent)
    assert got_info.title == "Plot a sine wave ünïcödé ✓"  # from the first user message
    assert got_info.updated >= got_info.created
    assert got_info.created.tzinfo is not None


def test_model_spec_dataclass_is_stored_as_json(store: ConversationStore) -> None:
    @dataclasses.dataclass
    class Spec:
        path: Path
        device: str = "cpu"

    info = store.create("chat", model=Spec(Path("/models/x")))
    assert store.info(info.id).model == {"path": "/models/x", "device": "cpu"}


def test_append_continues_the_shown_branch_and_an_earlier_position_branches(store: ConversationStore) -> None:
    info = store.create("chat", title="kept title")
    for position, text in enumerate(["q1", "a1", "q2", "a2"]):
        store.append(info.id, position, Message(Role.USER if position % 2 == 0 else Role.ASSISTANT, text))
    store.append(info.id, 3, Message(Role.ASSISTANT, "a2 regenerated"))  # a sibling of a2, now shown
    assert [m.content for m in store.get(info.id)[1]] == ["q1", "a1", "q2", "a2 regenerated"]
    store.append(info.id, 1, Message(Role.ASSISTANT, "edited"))  # a new branch at 1; the old one stays
    assert [m.content for m in store.get(info.id)[1]] == ["q1", "edited"]
    assert store.info(info.id).title == "kept title"
    assert store.info(info.id).message_count == 6  # every branch counts
    with pytest.raises(StoreError, match="holds 2 messages"):
        store.append(info.id, 5, _user("gap"))
    with pytest.raises(ConversationConflictError, match="shows 2 messages, not 4"):
        store.append(info.id, 4, _user("stale"), expected_count=4)
    assert store.info(info.id).message_count == 6


def test_replace_clear_and_save_all(store: ConversationStore) -> None:
    info = store.create("tool")
    one, two, three = _user("one"), Message(Role.ASSISTANT, "two"), _user("three")
    store.save_all(info.id, [one, two, three])
    assert store.info(info.id).title == "one" and store.info(info.id).current_id == three.id
    upper = Message(Role.ASSISTANT, "TWO")
    store.replace(info.id, two.id, upper)  # a new id: the child follows it
    _info, nodes, current = store.get_tree(info.id)
    assert [(m.content, parent) for m, parent in nodes] == [("one", None), ("TWO", one.id), ("three", upper.id)]
    assert current == three.id
    store.clear(info.id)
    assert store.get(info.id)[1] == [] and store.info(info.id).message_count == 0
    with pytest.raises(ConversationNotFoundError, match="no message"):
        store.replace(info.id, one.id, _user("x"))


def test_rename_delete_restore_purge(store: ConversationStore) -> None:
    info = store.create("chat")
    store.append(info.id, 0, _user("hello"))
    renamed = store.rename(info.id, "  My\nnew\ttitle \x00 ")
    assert renamed.title == "My new title"
    store.delete(info.id)
    assert store.list() == []
    assert [i.id for i in store.list(deleted=True)] == [info.id]
    with pytest.raises(ConversationNotFoundError, match="history list"):
        store.get(info.id)
    store.restore(info.id)
    assert store.get(info.id)[1][0].content == "hello"
    store.delete(info.id)
    assert store.exists(info.id) and not store.exists(info.id, include_deleted=False)
    store.append(info.id, 1, Message(Role.ASSISTANT, "a tab that still had it open goes on"))
    assert [i.id for i in store.list()] == [info.id]  # writing to it brings it back
    store.delete(info.id)
    assert store.purge() == 1
    assert not store.exists(info.id)
    with pytest.raises(ConversationNotFoundError):
        store.restore(info.id)


def test_discard_if_empty_removes_only_a_conversation_without_messages(store: ConversationStore) -> None:
    empty, kept = store.create("chat"), store.create("chat")
    store.append(kept.id, 0, _user("hello"))
    assert store.discard_if_empty(kept.id) is False
    assert store.discard_if_empty(empty.id) is True
    assert not store.exists(empty.id) and store.list(deleted=True) == []  # gone for good, not soft-deleted
    assert [i.id for i in store.list()] == [kept.id] and store.get(kept.id)[1][0].content == "hello"
    assert store.discard_if_empty(empty.id) is False  # no longer there


def test_list_is_newest_first_by_mode_with_paging(store: ConversationStore) -> None:
    ids = []
    for number in range(5):
        info = store.create("chat" if number % 2 == 0 else "code", title=f"c{number}")
        ids.append(info.id)
        time.sleep(0.002)
    store.append(ids[0], 0, _user("touch"))  # updating makes it the newest
    assert [i.title for i in store.list()] == ["c0", "c4", "c3", "c2", "c1"]
    assert [i.title for i in store.list(mode="code")] == ["c3", "c1"]
    assert [i.title for i in store.list(limit=2, offset=1)] == ["c4", "c3"]
    assert store.count() == 5 and store.count("code") == 2


def test_search_titles_and_text(store: ConversationStore) -> None:
    weather = store.create("chat", title="Weather report")
    store.append(weather.id, 0, _user("Will it rain in Zürich tomorrow?"))
    plots = store.create("code")
    store.append(plots.id, 0, _user("Plotting the sine function with matplotlib"))
    store.append(plots.id, 1, Message(Role.ASSISTANT, "Use 100% of the width_ratio"))

    def found(query: str, mode: str | None = None) -> set[str]:
        return {i.id for i in store.search(query, mode=mode)}

    assert found("weather") == {weather.id}  # title, any case
    assert found("zürich") == {weather.id}
    assert found("plot sine") == {plots.id}  # every word, as a prefix
    assert found("MATPLOTLIB") == {plots.id}
    assert found("sine", mode="chat") == set()
    assert found("100%") == {plots.id}
    assert found("nothing-like-this") == set()
    # Query syntax never reaches the database as syntax.
    for hostile in ['"', "NEAR(a b)", "a OR b AND", "*", "%", "_", "'; DROP TABLE messages; --", "\\"]:
        store.search(hostile)
    assert store.count() == 2


def test_unknown_and_malformed_ids(store: ConversationStore) -> None:
    with pytest.raises(ConversationNotFoundError):
        store.append("nope", 0, _user("x"))
    with pytest.raises(StoreError, match="not a conversation id"):
        store.create("chat", conversation_id="../../etc/passwd")
    info = store.create("chat", conversation_id="fixed-id_1")
    with pytest.raises(StoreError, match="already exists"):
        store.create("chat", conversation_id=info.id)
    with pytest.raises(ValueError, match="mode"):
        store.create("poetry")


def test_make_title() -> None:
    assert make_title("\n  hello   there\nworld  ") == "hello there"
    assert make_title("a\x00b") == "a b"
    long = make_title("word " * 40)
    assert long.endswith("…") and len(long) <= 60


def test_default_location_is_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    with ConversationStore.open() as store:
        store.create("chat")
        assert store.url.endswith("data/conversations.sqlite3")
    assert (tmp_path / "data" / "conversations.sqlite3").exists()


def test_unwritable_data_folder_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(blocker / "sub"))
    with pytest.raises(StoreError, match="WORKBENCH_DATA_DIR"):
        ConversationStore.open()


def test_bad_url_says_what_to_do() -> None:
    with pytest.raises(StoreError, match="WORKBENCH_DB_URL"):
        ConversationStore.open("not a url")


def test_resolve_an_id_prefix(store: ConversationStore) -> None:
    store.create("chat", conversation_id="abc123")
    store.create("chat", conversation_id="abd456")
    store.create("chat", conversation_id="ab")
    assert store.resolve_id("abc") == "abc123"
    assert store.resolve_id("ab") == "ab"  # an exact id wins
    with pytest.raises(ConversationNotFoundError, match="More than one"):
        store.resolve_id("a")
    for missing in ("ab_", "zzz"):  # "_" is not a wildcard
        with pytest.raises(ConversationNotFoundError, match="starting with"):
            store.resolve_id(missing)


def test_importing_the_store_loads_no_model_stack() -> None:
    code = "import sys, workbench.store; print([m for m in ('torch', 'transformers', 'streamlit') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_huge_query_is_cut_not_sent_whole(store: ConversationStore) -> None:
    info = store.create("chat", title="needle")
    assert [i.id for i in store.search("needle" + " x" * 100_000)] == []  # cut: still a valid query
    assert [i.id for i in store.search("needle")] == [info.id]
