"""Chat: multi-turn chat with streaming, Stop, edit, regenerate (kept as branches, with a pager) and clear;
documents and images attached in the message box."""

from __future__ import annotations

import streamlit as st

from pages._branches import BranchAction, answer_controls, branch_error, run_action, take_action, user_message
from pages._common import (
    current_model,
    end_turn,
    kept_notices,
    sampling_controls,
    session_object,
    show_error,
    show_markdown,
    stats_caption,
    stream_markdown,
    turn_notice,
)
from pages._documents import (
    FILE_TYPES,
    attach_sent,
    attached_documents,
    documents_sidebar,
    show_sources,
    source_picker,
)
from pages._history import conversation_sidebar
from pages._images import (
    IMAGE_TYPES,
    message_box_prompt,
    pending_images,
    refused,
    sent,
    show_message_images,
)
from pages._login import login_gate
from workbench.conversation import Mode
from workbench.errors import EmptyPromptError, WorkbenchError
from workbench.messages import Message, Role
from workbench.modes.chat import ChatSession, Turn

login_gate()  # first thing: nothing of the page before the password (pages/_login.py)
st.title("Chat")
model = current_model()
session = session_object("chat_session", lambda: ChatSession(model))
if session.model is not model:
    session.model = model
session.stop()  # a turn left running by a stopped script ends here, its partial reply kept
history = conversation_sidebar(Mode.CHAT, session)
documents = attached_documents("chat", history, session.history.id)  # saved with the conversation
session.documents = source_picker("chat", documents)  # the attached files, or a knowledge base
documents_sidebar("chat", documents)

session.system_prompt = st.sidebar.text_area("System prompt", value=session.system_prompt, key="chat_system")
session.settings = sampling_controls("chat", model.default_settings(), session.settings)
left, right = st.sidebar.columns(2)
clear = left.button("Clear", use_container_width=True, key="chat_clear")
# Never disabled: the flag would be computed before this run's reply exists and grey the button out
# after the first answer. With nothing to regenerate, the session says so.
regenerate = right.button("Regenerate", use_container_width=True, key="chat_regenerate")
if clear:
    session.clear()
turn: Turn | None = None
if regenerate:
    try:
        turn = session.regenerate()  # before the history is drawn, so the answer being replaced is not shown
    except WorkbenchError as exc:
        show_error(exc)


def start(action: BranchAction) -> Turn:
    """Run the Edit or Regenerate a click asked for (a new sibling; the old stays a page away)."""
    if action.kind == "edit":
        return session.edit(action.message_id, action.text)
    return session.regenerate(action.message_id)


started = run_action(take_action("chat"), start)  # before the history is drawn, as Regenerate above
turn = started if isinstance(started, Turn) else turn
branch_error()


def show_user(message: Message) -> None:
    show_message_images(message)
    show_markdown(message.content or "*(no text)*")


for message in session.messages:
    with st.chat_message(message.role.value):
        if message.role is Role.USER:
            user_message(session, history, message, "chat", show_user)
            continue
        show_markdown(message.content or "*(no text)*")
        if message.role is Role.ASSISTANT:
            show_sources(message)
            stats_caption(message)
            if not session.busy:
                answer_controls(session, history, message, "chat")

given = st.chat_input(
    "Message the model, or attach documents and images",
    submit_mode="stop",
    key="chat_input",
    accept_file="multiple",
    file_type=FILE_TYPES + IMAGE_TYPES,
)
attach_sent(given, documents)
prompt = message_box_prompt(given, "chat", sending=turn is not None)  # images waiting, a refused message
if prompt is not None:
    images = list(pending_images())
    with st.chat_message("user"):
        show_message_images(Message(Role.USER, prompt, images=images))
        show_markdown(prompt)
    try:
        turn = session.send(prompt, images)
    except EmptyPromptError as exc:
        show_error(exc)
    except WorkbenchError as exc:  # taken back (too long, images for a text-only model, every slot busy):
        refused(exc, prompt)  # nothing is lost, the text stays with Send again and Discard, the images wait
    else:
        sent()

if turn is not None:
    with st.chat_message("assistant"):
        try:
            stream_markdown(turn.text(), waiting=turn.waiting())
        except WorkbenchError as exc:
            turn_notice("error", str(exc))
        finally:
            reply = turn.close()  # also runs when Stop ends the script: the generation halts here
        show_sources(reply)
        stats_caption(reply)
    end_turn()
kept_notices()
