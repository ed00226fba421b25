"""Tool: the model calls tools; each call shows as a status block with its arguments and result."""

from __future__ import annotations

from collections.abc import Generator

import streamlit as st

from pages._branches import BranchAction, branch_error, run_action, take_action
from pages._common import (
    current_model,
    end_turn,
    kept_notices,
    sampling_controls,
)
from pages._documents import FILE_TYPES, attach_sent, attached_documents, documents_sidebar, source_picker
from pages._history import conversation_sidebar
from pages._images import IMAGE_TYPES, keep_if_taken_back, message_box_prompt, send_with_images
from pages._login import login_gate
from pages._tool_ui import (
    live_turn,
    loading_status,
    refresh_while_loading,
    show_history,
    tool_session,
    tools_panel,
)
from workbench.conversation import Mode
from workbench.modes.events import Event
from workbench.modes.tool import ToolChoice

login_gate()  # first thing: nothing of the page before the password (pages/_login.py)
st.title("Tool")
model = current_model()
session = tool_session(model)
session.stop()  # a turn left running by a stopped script ends here, its partial answer kept
history = conversation_sidebar(Mode.TOOL, session)
documents = attached_documents("tool", history, session.history.id)  # saved with the conversation
session.documents = source_picker("tool", documents)  # the attached files, or a knowledge base
documents_sidebar("tool", documents)

session.system_prompt = st.sidebar.text_area(
    "System prompt",
    value=session.system_prompt,
    key="tool_system",
    help="The tool list and the call format are added after it.",
)
choices = [c.value for c in ToolChoice]
session.options.tool_choice = ToolChoice(
    st.sidebar.selectbox(
        "Tool choice",
        choices,
        index=choices.index(session.options.tool_choice.value),
        key="tool_choice",
        help="auto: the model decides · required: its first reply must be a call · none: no tools shown",
    )
)
session.options.max_rounds = int(
    st.sidebar.number_input(
        "Max rounds",
        1,
        20,
        session.options.max_rounds,
        key="tool_max_rounds",
        help="Replies the model may write per message, calls included",
    )
)
session.settings = sampling_controls("tool", model.default_settings(), session.settings)
if st.sidebar.button("Clear", use_container_width=True, key="tool_clear"):
    session.clear()

loading_status(session.registry)
with st.expander("Tools", expanded=False):
    tools_panel(session, "tool_panel")


def start(action: BranchAction) -> Generator[Event, None, None]:
    """Run the Edit or Regenerate a click asked for (a new sibling; the old stays a page away)."""
    if action.kind == "edit":
        return session.edit(action.message_id, action.text)
    return session.regenerate(action.message_id)


started = run_action(take_action("tool"), start)  # before the history is drawn
branch_error()
resume = show_history(
    session, history
)  # a call waiting for Run or Skip, answered in this run: the rest of the turn
if isinstance(started, Generator):
    with st.chat_message("assistant"):
        live_turn(started)
    end_turn()

given = st.chat_input(
    "Ask something a tool can help with, or attach documents and images",
    submit_mode="stop",
    key="tool_input",
    accept_file="multiple",
    file_type=FILE_TYPES + IMAGE_TYPES,
)
attach_sent(given, documents)
prompt = message_box_prompt(given, "tool", sending=resume is not None)
if resume is not None:
    resume()
    end_turn()
if prompt is not None and (events := send_with_images("tool", prompt, session.send)) is not None:
    asked = session.history.last()  # the message just sent: kept on the page if the turn takes it back
    with st.chat_message("assistant"):
        live_turn(events, failed=lambda exc: keep_if_taken_back(session.history, asked, exc, "tool"))
    end_turn()
kept_notices()
refresh_while_loading(session.registry)
