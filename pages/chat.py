"""Chat: multi-turn chat with streaming, Stop, regenerate and clear."""

from __future__ import annotations

import streamlit as st

from pages._common import (
    current_model,
    sampling_controls,
    session_object,
    show_error,
    show_markdown,
    stats_caption,
    stream_markdown,
)
from pages._history import conversation_sidebar
from pages._login import login_gate
from workbench.conversation import Mode
from workbench.errors import WorkbenchError
from workbench.messages import Role
from workbench.modes.chat import ChatSession, Turn

login_gate()  # first thing: nothing of the page before the password (pages/_login.py)
st.title("Chat")
model = current_model()
session = session_object("chat_session", lambda: ChatSession(model))
if session.model is not model:
    session.model = model
session.stop()  # a turn left running by a stopped script ends here, its partial reply kept
conversation_sidebar(Mode.CHAT, session)

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
        turn = session.regenerate()  # before the history is drawn, so the dropped answer is not shown
    except WorkbenchError as exc:
        show_error(exc)

for message in session.messages:
    with st.chat_message(message.role.value):
        show_markdown(message.content or "*(no text)*")
        if message.role is Role.ASSISTANT:
            stats_caption(message)

prompt = st.chat_input("Message the model", submit_mode="stop", key="chat_input")
if prompt is not None:
    with st.chat_message("user"):
        show_markdown(prompt)
    try:
        turn = session.send(prompt)
    except WorkbenchError as exc:
        show_error(exc)

if turn is not None:
    with st.chat_message("assistant"):
        try:
            stream_markdown(turn.text(), waiting=turn.waiting())
        except WorkbenchError as exc:
            show_error(exc)
        finally:
            reply = turn.close()  # also runs when Stop ends the script: the generation halts here
        stats_caption(reply)
