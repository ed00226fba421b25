"""Saving as it happens: a recorder on a chat loop's Conversation, and reopening what it saved."""

from __future__ import annotations

import threading

import pytest

from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.conversation import Conversation, Mode
from workbench.errors import GenerationError, PromptTooLongError
from workbench.messages import Message, Role
from workbench.modes.chat import ChatSession
from workbench.store import ConversationStore
from workbench.store.page_history import PageHistory
from workbench.store.recorder import ConversationRecorder
from workbench.store.reopen import code_cells, load_conversation, rerun_cells


def chat(
    *replies: str | BaseException, delay_s: float = 0.0, history: Conversation | None = None
) -> ChatSession:
    backend = ScriptedBackend(*replies, delay_s=delay_s, chunk_chars=None, context_length=10_000)
    return ChatSession(ChatModel(backend, dialect=PlainDialect()), history=history)


def saved(store: ConversationStore, conversation_id: str) -> list[tuple[str, str]]:
    return [(m.role.value, m.content) for m in store.get(conversation_id)[1]]


def test_every_change_of_a_chat_is_saved_when_it_happens(store: ConversationStore) -> None:
    session = chat("Paris.", "Rome.", "Lyon?")
    recorder = ConversationRecorder.attach(store, session.history, model={"source": "scripted"})
    assert store.count() == 0  # nothing to list until something is said
    turn = session.send("Capital of France?")
    assert saved(store, session.history.id) == [("user", "Capital of France?")]  # before the answer
    list(turn.text())
    assert saved(store, session.history.id) == [("user", "Capital of France?"), ("assistant", "Paris.")]
    info = store.info(session.history.id)
    assert info.title == "Capital of France?" and info.mode == "chat" and info.model == {"source": "scripted"}
    list(session.regenerate().text())
    assert saved(store, session.history.id)[-1] == ("assistant", "Rome.")
    session.history.set_title("Capitals")
    assert store.info(session.history.id).title == "Capitals"
    session.clear()
    assert saved(store, session.history.id) == []
    assert recorder.error is None


def test_a_stopped_answer_is_saved_with_its_partial_text_and_mark(store: ConversationStore) -> None:
    session = chat(" ".join(f"w{i}" for i in range(300)), delay_s=0.01)
    ConversationRecorder.attach(store, session.history)
    turn = session.send("Tell me a long story")
    for number, _chunk in enumerate(turn.text()):
        if number == 3:
            turn.stop()
    reply = store.get(session.history.id)[1][-1]
    assert reply.stopped and reply.content.startswith("w0 w1 w2") and len(reply.content.split()) < 30


def test_a_failed_answer_is_saved_with_its_failure(store: ConversationStore) -> None:
    session = chat(GenerationError("The model crashed; try again."))
    ConversationRecorder.attach(store, session.history)
    with pytest.raises(GenerationError):
        list(session.send("hi").text())
    messages = store.get(session.history.id)[1]
    assert [m.role for m in messages] == [m.role for m in session.messages]
    assert messages == session.messages


def test_a_failed_write_is_kept_and_repaired_at_the_next_change(store: ConversationStore) -> None:
    session = chat("One.", "Two.")
    recorder = ConversationRecorder.attach(store, session.history)
    list(session.send("first").text())
    store.delete(session.history.id)
    store.purge()  # gone from the database under the recorder's feet
    turn = session.send("second")  # the loop goes on; the recorder keeps the error
    assert recorder.error is not None and "history list" in str(recorder.error)
    list(turn.text())  # the next change writes the whole history again
    assert recorder.error is None
    assert [c for _r, c in saved(store, session.history.id)] == ["first", "One.", "second", "Two."]


def test_a_reopened_conversation_goes_on_where_it_was(store: ConversationStore) -> None:
    first = chat("One.")
    ConversationRecorder.attach(store, first.history)
    list(first.send("first").text())
    reopened = load_conversation(store, first.history.id)
    assert reopened.mode is Mode.CHAT and reopened.title == "first" and reopened.messages == first.messages
    second = chat("Two.", history=reopened)
    recorder = ConversationRecorder.attach(store, reopened, saved=True)
    list(second.send("second").text())
    assert [c for _r, c in saved(store, reopened.id)] == ["first", "One.", "second", "Two."]
    assert recorder.error is None
    recorder.detach()
    reopened.append(Message(Role.USER, "not saved"))
    assert store.info(reopened.id).message_count == 4


TOO_LONG = "word " * 3000  # more than the scripted model's context of 10,000 characters


def test_a_new_conversation_whose_first_message_is_refused_is_not_left_in_the_list(
    store: ConversationStore,
) -> None:
    session, page = chat("Fine."), PageHistory(store, Mode.CHAT)
    page.follow(session, None)  # the page's new conversation, as on a first visit
    with pytest.raises(PromptTooLongError):
        session.send(TOO_LONG)  # saved at once, then taken back: nothing answered it
    assert store.list() == [] and store.list(deleted=True) == []  # no empty conversation left behind
    assert page.recorder is not None and page.recorder.error is None
    list(session.send("short").text())  # the same conversation goes on, saved at its first kept message
    assert [(i.id, i.title) for i in store.list()] == [(session.history.id, "short")]
    assert saved(store, session.history.id) == [("user", "short"), ("assistant", "Fine.")]


def test_a_refused_message_never_removes_a_saved_conversation(store: ConversationStore) -> None:
    colours, emptied = store.create("chat", title="Colours"), store.create("chat", title="Emptied")
    store.save_all(colours.id, [Message(Role.USER, "Name a colour."), Message(Role.ASSISTANT, "Red.")])
    for conversation_id in (colours.id, emptied.id):  # one with messages, one the user cleared earlier
        session, page = chat("unused"), PageHistory(store, Mode.CHAT)
        page.open(session, conversation_id)
        with pytest.raises(PromptTooLongError):
            session.send(TOO_LONG)
    session, page = chat("Blue."), PageHistory(store, Mode.CHAT)
    cleared = page.new(session)  # made here, answered, then cleared: kept, as Clear keeps it
    list(session.send("Another colour?").text())
    session.clear()
    with pytest.raises(PromptTooLongError):
        session.send(TOO_LONG)
    assert {(i.id, i.title, i.message_count) for i in store.list()} == {
        (colours.id, "Colours", 2),
        (emptied.id, "Emptied", 0),
        (cleared.id, "Another colour?", 0),
    }
    assert saved(store, colours.id) == [("user", "Name a colour."), ("assistant", "Red.")]


def test_two_tabs_on_one_conversation_keep_both_as_branches(store: ConversationStore) -> None:
    first = chat("One.")
    ConversationRecorder.attach(store, first.history)
    list(first.send("first").text())
    tab_a, tab_b = load_conversation(store, first.history.id), load_conversation(store, first.history.id)
    recorder_a = ConversationRecorder.attach(store, tab_a, saved=True)
    recorder_b = ConversationRecorder.attach(store, tab_b, saved=True)
    tab_a.append(Message(Role.USER, "from tab A"))
    tab_b.append(Message(Role.USER, "from tab B"))  # a sibling of A's message in the saved tree
    tab_b.append(Message(Role.ASSISTANT, "answer in B"))
    assert recorder_a.forked_from is None and recorder_b.forked_from is None
    assert [c for _r, c in saved(store, first.history.id)] == ["first", "One.", "from tab B", "answer in B"]
    reopened = load_conversation(store, first.history.id)
    a_message = next(m for m, _ in reopened.nodes() if m.content == "from tab A")
    assert reopened.branch_position(a_message.id) == (1, 2)  # nothing lost: one pager step away
    reopened.switch(a_message.id)
    assert [m.content for m in reopened.snapshot()] == ["first", "One.", "from tab A"]


def test_a_tab_whose_branch_was_deleted_elsewhere_goes_on_as_a_copy(store: ConversationStore) -> None:
    first = chat("One.")
    ConversationRecorder.attach(store, first.history)
    list(first.send("first").text())
    tab_a, tab_b = load_conversation(store, first.history.id), load_conversation(store, first.history.id)
    ConversationRecorder.attach(store, tab_a, saved=True)
    recorder_b = ConversationRecorder.attach(store, tab_b, saved=True)
    tab_a.delete_branch(tab_a.snapshot()[1].id)  # tab A deletes the answer
    tab_b.append(Message(Role.USER, "from tab B"))  # B's parent is gone from the store: B goes on as a copy
    assert recorder_b.forked_from == first.history.id and tab_b.title == "first (copy)"
    assert [c for _r, c in saved(store, first.history.id)] == ["first"]
    assert [c for _r, c in saved(store, tab_b.id)] == ["first", "One.", "from tab B"]


def test_threads_changing_one_conversation_end_saved_as_it_is(store: ConversationStore) -> None:
    conversation = Conversation(Mode.TOOL)
    ConversationRecorder.attach(store, conversation)

    def work(number: int) -> None:
        for index in range(25):
            conversation.append(Message(Role.USER, f"t{number} {index}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conversation.append(Message(Role.ASSISTANT, "done"))  # the last change brings the store in step
    assert store.get(conversation.id)[1] == conversation.messages
    assert len(conversation) == 101


def test_code_cells_and_rerun_report() -> None:
    messages = [
        Message(Role.USER, "compute"),
        Message(Role.ASSISTANT, "Let me.\n```python\nx = 41\n```", interpreter=True),
        Message(Role.OBSERVATION, "", name="interpreter"),
        Message(Role.ASSISTANT, "", interpreter=True, code="x + 1"),
        Message(Role.ASSISTANT, "The answer is 42."),
    ]
    assert code_cells(messages) == ["x = 41", "x + 1"]


@pytest.mark.kernel
def test_rerun_cells_rebuilds_the_variables_in_a_real_kernel() -> None:
    from kernel import KernelSession
    from workbench.modes.code_workspace import Workspace

    with KernelSession(sandbox=True, interrupt_grace=1.0) as kernel:
        workspace = Workspace(kernel)
        report = rerun_cells(workspace.run_user_cell, ["x = 41", "1 / 0", "y = x + 1"])
        assert report.ran == 2 and report.failed == [(2, "ZeroDivisionError: division by zero")]
        assert (
            report.summary() == "Re-ran 3 cells: 2 ran, cell 2 failed (ZeroDivisionError: division by zero)."
        )
        assert workspace.run_user_cell("y").result == "42"
