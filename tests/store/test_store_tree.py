"""Trees in the store: branches saved as rows with parents, the shown leaf kept, the 0002 migration,
and import/export of branched conversations (ours and ChatGPT's)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from workbench.conversation import Conversation, Mode
from workbench.messages import Message, Role
from workbench.store import ConversationStore
from workbench.store.database import create_store_engine, migrate
from workbench.store.errors import ImportRefusedError
from workbench.store.recorder import ConversationRecorder
from workbench.store.reopen import load_conversation


def _branched(store: ConversationStore) -> tuple[Conversation, dict[str, Message]]:
    """A recorded conversation: q1 with answers a1 and a2 (regenerated), q1 edited into q1b with b1."""
    conversation = Conversation(Mode.CHAT)
    ConversationRecorder.attach(store, conversation)
    m = {"q1": Message(Role.USER, "q1"), "a1": Message(Role.ASSISTANT, "a1"), "a2": Message(Role.ASSISTANT, "a2")}
    conversation.append(m["q1"])
    conversation.append(m["a1"])
    conversation.regenerate(m["a1"].id)
    conversation.append(m["a2"])
    m["q1b"] = conversation.edit(m["q1"].id, "q1b")
    m["b1"] = Message(Role.ASSISTANT, "b1")
    conversation.append(m["b1"])
    return conversation, m


def test_branches_are_rows_with_parents_and_the_shown_leaf_survives_a_reopen(store: ConversationStore) -> None:
    conversation, m = _branched(store)
    info, nodes, current = store.get_tree(conversation.id)
    assert info.message_count == 5 and current == m["b1"].id
    assert {(msg.content, parent) for msg, parent in nodes} == {
        ("q1", None), ("a1", m["q1"].id), ("a2", m["q1"].id), ("q1b", None), ("b1", m["q1b"].id)
    }
    assert [x.content for x in store.get(conversation.id)[1]] == ["q1b", "b1"]
    conversation.switch(m["a1"].id)  # paging to 1/2 is saved at once
    assert [x.content for x in store.get(conversation.id)[1]] == ["q1", "a1"]
    reopened = load_conversation(store, conversation.id)  # a reload, a second tab, a restart
    assert [x.content for x in reopened.snapshot()] == ["q1", "a1"]
    assert reopened.branch_position(m["a1"].id) == (1, 2) and reopened.branch_position(m["q1"].id) == (1, 2)


def test_deleting_a_branch_deletes_its_rows(store: ConversationStore) -> None:
    conversation, m = _branched(store)
    conversation.delete_branch(m["q1"].id)
    info, nodes, current = store.get_tree(conversation.id)
    assert [x.content for x, _ in nodes] == ["q1b", "b1"] and info.message_count == 2 and current == m["b1"].id


def test_a_checkpointed_answer_is_replaced_in_its_branch(store: ConversationStore, monkeypatch) -> None:
    from workbench.store import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "CHECKPOINT_S", 0.0)
    conversation, m = _branched(store)
    conversation.regenerate(m["b1"].id)
    conversation.draft("half")
    conversation.draft("half an answer")  # checkpointed as a sibling of b1, marked interrupted
    saved = [x.content for x in store.get(conversation.id)[1]]
    assert saved == ["q1b", "half an answer"]
    final = Message(Role.ASSISTANT, "the whole answer")
    conversation.append(final)
    _info, nodes, current = store.get_tree(conversation.id)
    assert current == final.id and sorted(x.content for x, p in nodes if p == m["q1b"].id) == ["b1", "the whole answer"]


def _schema_0002_with_linear_conversations(url: str) -> None:
    engine = create_store_engine(url)
    migrate(engine, "0002")
    now = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    with engine.begin() as connection:
        for cid, texts in (("lin1", ["hello", "hi", "how are you", "fine"]), ("lin2", ["only one"])):
            connection.execute(
                sa.text(
                    "INSERT INTO conversations (id, title, mode, created_at, updated_at, message_count) "
                    "VALUES (:id, '', 'chat', :now, :now, :n)"
                ),
                {"id": cid, "now": now, "n": len(texts)},
            )
            for position, text in enumerate(texts):
                connection.execute(
                    sa.text(
                        "INSERT INTO messages (conversation_id, position, role, content, extra, created_at) "
                        "VALUES (:cid, :p, :role, :content, '{}', :now)"
                    ),
                    {"cid": cid, "p": position, "role": "user" if position % 2 == 0 else "assistant",
                     "content": text, "now": now},
                )  # fmt: skip
    engine.dispose()


def test_a_database_at_0002_becomes_single_branch_trees_without_loss(store_url: str) -> None:
    _schema_0002_with_linear_conversations(store_url)
    with ConversationStore.open(store_url) as store:
        info, nodes, current = store.get_tree("lin1")
        assert [m.content for m, _ in nodes] == ["hello", "hi", "how are you", "fine"]
        assert [parent for _, parent in nodes] == [None] + [m.id for m, _ in nodes[:-1]]
        assert current == nodes[-1][0].id and info.message_count == 4
        assert [m.content for m in store.get("lin2")[1]] == ["only one"]
        conversation = load_conversation(store, "lin1")  # and goes on as a tree
        ConversationRecorder.attach(store, conversation, saved=True)
        conversation.regenerate(nodes[3][0].id)
        conversation.append(Message(Role.ASSISTANT, "great"))
        assert [m.content for m in store.get("lin1")[1]] == ["hello", "hi", "how are you", "great"]
        assert store.info("lin1").message_count == 5


def test_json_export_and_import_keep_the_tree(store: ConversationStore) -> None:
    conversation, m = _branched(store)
    conversation.switch(m["a1"].id)
    exported = json.loads(store.export_json(conversation.id))
    assert exported["current"] == m["a1"].id
    assert {(x["content"], x["parent"]) for x in exported["messages"]} >= {("a1", m["q1"].id), ("b1", m["q1b"].id)}
    markdown = store.export_markdown(conversation.id)
    assert "\na1\n" in markdown and "\nb1\n" not in markdown  # Markdown is the shown branch
    store.delete(conversation.id)
    store.purge()
    [back] = store.import_json(json.dumps(exported))
    _info, nodes, current = store.get_tree(back.id)
    assert current == m["a1"].id and len(nodes) == 5
    assert {(x.id, p) for x, p in nodes} == {(x["id"], x["parent"]) for x in exported["messages"]}


def _chatgpt_export() -> list[dict[str, object]]:
    def node(key: str, parent: str | None, children: list[str], role: str | None, text: str = "") -> dict[str, object]:
        message = None
        if role is not None:
            message = {"id": key, "author": {"role": role, "name": None, "metadata": {}},
                       "create_time": 1700000000.0, "content": {"content_type": "text", "parts": [text]},
                       "status": "finished_successfully", "metadata": {}, "recipient": "all"}  # fmt: skip
        return {"id": key, "message": message, "parent": parent, "children": children}

    mapping = {
        "root": node("root", None, ["sys"], None),
        "sys": node("sys", "root", ["u1"], "system", ""),
        "u1": node("u1", "sys", ["a1", "a2"], "user", "What is a tree?"),
        "a1": node("a1", "u1", [], "assistant", "A plant."),
        "a2": node("a2", "u1", ["u2"], "assistant", "A graph with no cycles."),
        "u2": node("u2", "a2", [], "user", "Thanks"),
    }
    return [{"title": "Trees", "create_time": 1700000000.0, "update_time": 1700000100.5,
             "mapping": mapping, "current_node": "a1", "conversation_id": "chatgpt-conv-1"}]  # fmt: skip


def test_chatgpt_conversations_json_imports_with_its_branches(store: ConversationStore) -> None:
    notes: list[str] = []
    [info] = store.import_json(json.dumps(_chatgpt_export()), notes=notes)
    assert info.title == "Trees" and info.mode == "chat" and info.id == "chatgpt-conv-1"
    assert info.created == datetime.fromtimestamp(1700000000.0, tz=timezone.utc)
    _info, nodes, current = store.get_tree(info.id)
    assert {(m.id, m.role.value, m.content, p) for m, p in nodes} == {
        ("u1", "user", "What is a tree?", None),
        ("a1", "assistant", "A plant.", "u1"),
        ("a2", "assistant", "A graph with no cycles.", "u1"),
        ("u2", "user", "Thanks", "a2"),
    }
    assert current == "a1"  # ChatGPT's current_node is the branch shown
    assert notes and "left out" in notes[0]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c: c["mapping"]["u2"].update(parent="nowhere"), "parent 'nowhere', which is not in the mapping"),
        (lambda c: c["mapping"]["u1"].update(parent="u2"), "loop of parents"),
        (lambda c: c.update(mapping=[1, 2]), '"mapping" must be an object'),
        (lambda c: c["mapping"]["a1"].update(message="text"), "'message' must be an object or null"),
    ],
)
def test_a_broken_chatgpt_export_is_refused_whole(store: ConversationStore, change, error) -> None:
    export = _chatgpt_export()
    change(export[0])
    with pytest.raises(ImportRefusedError, match=error):
        store.import_json(json.dumps(export))
    assert store.count() == 0


def test_an_import_with_a_broken_tree_is_refused(store: ConversationStore) -> None:
    data = {"title": "x", "mode": "chat", "messages": [
        {"role": "user", "content": "a", "id": "m1", "parent": None},
        {"role": "assistant", "content": "b", "id": "m2", "parent": "m9"},
    ]}  # fmt: skip
    with pytest.raises(ImportRefusedError, match="Conversation 1, message 'm2' has the parent 'm9'"):
        store.import_json(json.dumps(data))
    assert store.count() == 0


def test_a_parent_loop_written_by_another_program_is_a_clear_error(store: ConversationStore) -> None:
    from workbench.errors import TranscriptError

    conversation, m = _branched(store)
    with store.engine.begin() as connection:  # another program links q1 under its own answer
        connection.execute(
            sa.text("UPDATE messages SET parent_id = :a WHERE conversation_id = :c AND message_id = :q"),
            {"a": m["a1"].id, "c": conversation.id, "q": m["q1"].id},
        )
    assert [x.content for x in store.get(conversation.id)[1]] == ["q1b", "b1"]  # the shown branch still reads
    with pytest.raises(TranscriptError, match="loop of parents"):
        load_conversation(store, conversation.id)


def test_a_message_id_is_taken_once_per_conversation(store: ConversationStore) -> None:
    from workbench.store.errors import StoreError

    info = store.create("chat")
    message = Message(Role.USER, "x")
    store.add(info.id, message, None)
    with pytest.raises(StoreError, match="already holds a message with the id"):
        store.add(info.id, message, None)
    assert store.info(info.id).message_count == 1  # nothing half-written
    other = store.create("chat")
    store.add(other.id, message, None)  # another conversation may hold the same id (a fork keeps ids)
