"""Conversations as trees: edit, regenerate, siblings, switch, fork, delete a branch, JSON with ids."""

from __future__ import annotations

import json

import pytest

from workbench.conversation import (
    Appended,
    BranchDeleted,
    Conversation,
    Edited,
    Forked,
    HistoryChange,
    Mode,
    Regenerating,
    Switched,
    order_tree,
)
from workbench.errors import BranchError, TranscriptError
from workbench.messages import Message, Role


def _texts(conversation: Conversation) -> list[str]:
    return [m.content for m in conversation.snapshot()]


def _chat() -> tuple[Conversation, Message, Message]:
    conversation = Conversation(Mode.CHAT)
    question, answer = Message(Role.USER, "q1"), Message(Role.ASSISTANT, "a1")
    conversation.append(question)
    conversation.append(answer)
    return conversation, question, answer


def test_regenerate_keeps_the_old_answer_as_a_sibling_and_the_pager_counts_them():
    conversation, question, first = _chat()
    conversation.regenerate(first.id)
    assert _texts(conversation) == ["q1"] and conversation.current_id == question.id
    second = Message(Role.ASSISTANT, "a2")
    conversation.append(second)
    assert _texts(conversation) == ["q1", "a2"]
    assert conversation.siblings(first.id) == [first.id, second.id]
    assert conversation.branch_position(second.id) == (2, 2)
    assert conversation.branch_position(first.id) == (1, 2)
    assert conversation.node_count() == 3


def test_edit_adds_a_sibling_user_message_and_the_old_branch_stays_reachable():
    conversation, question, _first = _chat()
    conversation.append(Message(Role.USER, "q2"))
    conversation.append(Message(Role.ASSISTANT, "a3"))
    edited = conversation.edit(question.id, "q1 edited")
    assert edited.role is Role.USER and edited.id != question.id
    assert _texts(conversation) == ["q1 edited"]
    conversation.append(Message(Role.ASSISTANT, "b1"))
    assert conversation.siblings(question.id) == [question.id, edited.id]
    conversation.switch(question.id)  # the old branch, down to its latest leaf
    assert _texts(conversation) == ["q1", "a1", "q2", "a3"]
    conversation.switch(edited.id)
    assert _texts(conversation) == ["q1 edited", "b1"]


def test_switch_follows_the_latest_leaf_of_the_branch():
    conversation, question, first = _chat()
    conversation.regenerate(first.id)
    second = Message(Role.ASSISTANT, "a2")
    conversation.append(second)
    conversation.switch(first.id)
    conversation.append(Message(Role.USER, "later under a1"))
    conversation.switch(second.id)
    assert _texts(conversation) == ["q1", "a2"]
    conversation.switch(question.id)  # the newest leaf under q1 is the message added last
    assert _texts(conversation) == ["q1", "a1", "later under a1"]


def test_only_user_messages_are_edited_and_only_answers_regenerated():
    conversation, question, answer = _chat()
    with pytest.raises(BranchError, match="Only your own messages can be edited"):
        conversation.edit(answer.id, "x")
    with pytest.raises(BranchError, match="Only an answer can be regenerated"):
        conversation.regenerate(question.id)
    with pytest.raises(BranchError, match="empty"):
        conversation.edit(question.id, "   ")
    with pytest.raises(BranchError, match=r"has no message 'nope'.*reload"):
        conversation.switch("nope")
    assert _texts(conversation) == ["q1", "a1"] and conversation.node_count() == 2


def test_fork_copies_the_thread_up_to_a_message_into_a_new_conversation():
    conversation, question, answer = _chat()
    conversation.append(Message(Role.USER, "q2"))
    conversation.title = "Talk"
    seen: list[HistoryChange] = []
    conversation.subscribe(seen.append)
    copy = conversation.fork(answer.id)
    assert copy.id != conversation.id and copy.mode is conversation.mode and copy.title == "Talk (branch)"
    assert _texts(copy) == ["q1", "a1"] and [m.id for m in copy.snapshot()] == [question.id, answer.id]
    assert seen == [Forked(answer.id, copy.id)]
    copy.append(Message(Role.USER, "only in the copy"))
    assert _texts(conversation) == ["q1", "a1", "q2"]  # the original is untouched
    assert copy.snapshot()[0] is not question  # copies, not shared objects


def test_delete_branch_removes_the_subtree_and_shows_a_sibling():
    conversation, question, first = _chat()
    under = Message(Role.USER, "under a1")
    conversation.append(under)
    conversation.regenerate(first.id)
    second = Message(Role.ASSISTANT, "a2")
    conversation.append(second)
    conversation.switch(first.id)
    seen: list[HistoryChange] = []
    conversation.subscribe(seen.append)
    conversation.delete_branch(first.id)
    assert _texts(conversation) == ["q1", "a2"] and conversation.node_count() == 2
    [deleted] = seen
    assert isinstance(deleted, BranchDeleted) and deleted == BranchDeleted(deleted.ids, second.id, 2)
    assert set(deleted.ids) == {first.id, under.id}
    conversation.delete_branch(question.id)
    assert _texts(conversation) == [] and conversation.node_count() == 0 and conversation.current_id is None


def test_every_branch_operation_is_announced_as_a_typed_event():
    conversation, question, answer = _chat()
    seen: list[HistoryChange] = []
    conversation.subscribe(seen.append)
    edited = conversation.edit(question.id, "again")
    conversation.switch(answer.id)
    conversation.regenerate(answer.id)
    assert seen == [
        Edited(0, edited, None, question.id),
        Switched(answer.id, 2),
        Regenerating(question.id, 1, answer.id),
    ]
    assert isinstance(seen[0], Appended)  # a store saves an edit as any new message


def test_the_tree_round_trips_through_json_with_ids_parents_and_the_shown_leaf():
    conversation, question, first = _chat()
    conversation.regenerate(first.id)
    conversation.append(Message(Role.ASSISTANT, "a2"))
    conversation.switch(first.id)
    data = json.loads(json.dumps(conversation.to_dict()))
    assert data["current"] == first.id
    assert [(m["id"], m["parent"]) for m in data["messages"]][:2] == [(question.id, None), (first.id, question.id)]
    back = Conversation.from_dict(data)
    assert _texts(back) == ["q1", "a1"] and back.node_count() == 3
    assert back.siblings(first.id) == conversation.siblings(first.id)


def test_old_json_without_parents_is_one_branch():
    data = {
        "id": "abc",
        "mode": "chat",
        "title": "",
        "created": "2026-01-01T00:00:00",
        "updated": "2026-01-01T00:00:00",
        "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
    }
    back = Conversation.from_dict(data)
    assert _texts(back) == ["x", "y"] and back.node_count() == 2


@pytest.mark.parametrize(
    ("links", "error"),
    [
        ([("a", None), ("b", "zz")], "parent 'zz', which is not in the conversation"),
        ([("a", "b"), ("b", "a")], "loop of parents"),
        ([("a", None), ("a", None)], "Two messages have the id 'a'"),
    ],
)
def test_a_broken_tree_is_refused_with_what_is_wrong(links, error):
    nodes = [(Message(Role.USER, "x", id=key), parent) for key, parent in links]
    with pytest.raises(TranscriptError, match=error):
        order_tree(nodes)


def test_children_before_parents_are_put_in_order():
    child, root = Message(Role.ASSISTANT, "c", id="c"), Message(Role.USER, "r", id="r")
    assert [m.id for m, _ in order_tree([(child, "r"), (root, None)])] == ["r", "c"]


def test_the_same_message_appended_twice_gets_an_id_of_its_own():
    conversation = Conversation()
    message = Message(Role.USER, "x")
    conversation.append(message)
    conversation.append(message)
    ids = [m.id for m in conversation.snapshot()]
    assert len(set(ids)) == 2 and ids[0] == message.id
