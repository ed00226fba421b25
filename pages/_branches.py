"""Edit, Regenerate, the ``‹ n/m ›`` pager and "Branch", drawn the same on every page (UI only).

The behaviour is the conversation's (:mod:`workbench.conversation`) and the loops'
(``session.edit``, ``session.regenerate``); the recorder saves every switch, so a reload shows the
branch that was chosen. A click only records what to do: the page takes it with :func:`take_action`
before it draws the history, and runs the turn it starts as it runs a sent message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from pages._common import show_error
from pages._history import open_fork
from workbench.conversation import Conversation
from workbench.errors import WorkbenchError
from workbench.messages import Message
from workbench.store.page_history import HoldsHistory, PageHistory


@dataclass(frozen=True)
class BranchAction:
    """What a click asked for: ``edit`` (with the new text) or ``regenerate`` the message ``message_id``."""

    kind: str
    message_id: str
    text: str = ""


def take_action(key: str) -> BranchAction | None:
    """The Edit/Regenerate asked for by the last click on this page, once."""
    action = st.session_state.pop(f"{key}_branch_action", None)
    return action if isinstance(action, BranchAction) else None


def _ask(key: str, action: BranchAction) -> None:
    st.session_state[f"{key}_branch_action"] = action
    st.session_state.pop(f"{key}_editing", None)


def _switch(loop: HoldsHistory, message_id: str) -> None:
    loop.stop()  # an answer still being written ends in the branch it belongs to
    try:
        loop.history.switch(message_id)
    except WorkbenchError as exc:
        st.session_state["branch_error"] = str(exc)


def _fork(loop: HoldsHistory, history: PageHistory | None, message_id: str) -> None:
    try:
        open_fork(history, loop, message_id)
    except WorkbenchError as exc:
        st.session_state["branch_error"] = str(exc)


def branch_error() -> None:
    """Show what went wrong with the last branch click, if anything."""
    if error := st.session_state.pop("branch_error", None):
        st.error(error)


def pager(conversation: Conversation, loop: HoldsHistory, message: Message, key: str) -> None:
    """``‹ n/m ›`` when the message has siblings: the arrows show the branch before or after."""
    siblings = conversation.siblings(message.id)
    if len(siblings) < 2:
        return
    index = siblings.index(message.id)
    st.button(
        "‹",
        key=f"{key}_prev_{message.id}",
        type="tertiary",
        disabled=index == 0,
        help="The previous version",
        on_click=_switch,
        args=(loop, siblings[index - 1]),
    )
    st.markdown(f"{index + 1}/{len(siblings)}")
    st.button(
        "›",
        key=f"{key}_next_{message.id}",
        type="tertiary",
        disabled=index == len(siblings) - 1,
        help="The next version",
        on_click=_switch,
        args=(loop, siblings[min(index + 1, len(siblings) - 1)]),
    )


def user_message(
    loop: HoldsHistory,
    history: PageHistory | None,
    message: Message,
    key: str,
    show: Callable[[Message], None],
) -> None:
    """A user message: its text (or, while editing, a text box with Send and Cancel), then its controls."""
    editing_key = f"{key}_editing"
    if st.session_state.get(editing_key) == message.id:
        text = st.text_area("Edit your message", value=message.content, key=f"{key}_edit_text_{message.id}")
        with st.container(horizontal=True):
            st.button(
                "Send",
                key=f"{key}_edit_send_{message.id}",
                type="primary",
                on_click=lambda: _ask(key, BranchAction("edit", message.id, text)),
            )
            st.button(
                "Cancel", key=f"{key}_edit_cancel_{message.id}", on_click=lambda: st.session_state.pop(editing_key)
            )
        return
    show(message)
    with st.container(horizontal=True, vertical_alignment="center"):
        pager(loop.history, loop, message, key)
        st.button(
            "Edit",
            key=f"{key}_edit_{message.id}",
            type="tertiary",
            icon=":material/edit:",
            help="Change this message; the answer is written again, the old one stays a page away",
            on_click=lambda: st.session_state.__setitem__(editing_key, message.id),
        )
        _branch_button(loop, history, message, key)


def answer_controls(
    loop: HoldsHistory, history: PageHistory | None, message: Message, key: str, *, note: str = ""
) -> None:
    """Under an answer (``message`` is its first message): the pager, Regenerate and Branch."""
    with st.container(horizontal=True, vertical_alignment="center"):
        pager(loop.history, loop, message, key)
        st.button(
            "Regenerate",
            key=f"{key}_regenerate_{message.id}",
            type="tertiary",
            icon=":material/refresh:",
            help=note or "Write this answer again; the old one stays a page away",
            on_click=_ask,
            args=(key, BranchAction("regenerate", message.id)),
        )
        _branch_button(loop, history, message, key)


def _branch_button(loop: HoldsHistory, history: PageHistory | None, message: Message, key: str) -> None:
    st.button(
        "Branch",
        key=f"{key}_fork_{message.id}",
        type="tertiary",
        icon=":material/call_split:",
        help="Branch into a new conversation holding the messages up to here",
        disabled=history is None,
        on_click=_fork,
        args=(loop, history, message.id),
    )


def run_action(action: BranchAction | None, start: Callable[[BranchAction], object]) -> object | None:
    """Start the turn an Edit or Regenerate asked for; an error is shown and None returned."""
    if action is None:
        return None
    try:
        return start(action)
    except WorkbenchError as exc:
        show_error(exc)
        return None
