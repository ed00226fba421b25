"""The sidebar's saved conversations: New, search, the page's conversations newest first, rename, delete
with undo; the open conversation's id in the URL (``?c=ID``), so a refresh, a bookmark or a second tab
opens it again.

UI only: what happens is :class:`workbench.store.page_history.PageHistory`; every change of the open
conversation is saved by its recorder as it happens. Clicks act in callbacks, before the page runs, so
the page draws the conversation that is open after the click.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from kernel import Execution
from pages._common import session_object
from workbench.conversation import Conversation, Mode
from workbench.errors import USER_ERRORS
from workbench.modes.code import CodeSession
from workbench.safe_markdown import images_as_links
from workbench.shared import process_resource
from workbench.store import ConversationStore, StoreError, default_url
from workbench.store.page_history import HoldsHistory, PageHistory
from workbench.store.reopen import NEW_KERNEL_NOTE, code_cells, rerun_cells

URL_KEY = "c"
PAGES = {Mode.CHAT: "pages/chat.py", Mode.TOOL: "pages/tool.py", Mode.CODE: "pages/code.py"}
LISTED = 15


def conversation_store(url: str) -> ConversationStore:
    """The process-wide store at ``url``, opened and migrated once (not in ``st.cache_resource``)."""
    return process_resource("store", url, lambda: ConversationStore.open(url))


def _label(title: str) -> str:
    """A title as a button label: Streamlit reads labels as Markdown, a title is plain text."""
    return "".join("\\" + char if char in _MARKDOWN else char for char in title)


_MARKDOWN = set("\\\\`*_[]$~:<>")  # what formats inside a one-line label


def _set_url(conversation: Conversation) -> None:
    if st.query_params.get(URL_KEY) != conversation.id:
        st.query_params[URL_KEY] = conversation.id


def _act(action: Callable[[], object], loop: HoldsHistory) -> None:
    try:
        action()
    except USER_ERRORS as exc:
        st.session_state["history_error"] = str(exc)
    _set_url(loop.history)


def open_fork(history: PageHistory | None, loop: HoldsHistory, message_id: str) -> None:
    """Branch into a new conversation holding the thread up to ``message_id``, and open it here.

    Raises:
        WorkbenchError: If the conversation cannot be saved, or has no such message.
    """
    if history is None:
        raise StoreError("Conversations are not saved here, so a branch cannot become a conversation.")
    history.fork(loop, message_id)
    _set_url(loop.history)


def conversation_sidebar(
    mode: Mode, loop: HoldsHistory, on_reopen: Callable[[Conversation], None] | None = None
) -> PageHistory | None:
    """Draw the page's conversations in the sidebar and make ``loop`` hold the one the URL names.

    Returns:
        The page's history (None when conversations cannot be saved: the sidebar says why).
    """
    try:
        store = conversation_store(default_url())  # WORKBENCH_DB_URL, else the data folder
    except USER_ERRORS as exc:
        st.sidebar.warning(f"Conversations are not saved: {images_as_links(str(exc))}")
        return None
    history = session_object(
        f"{mode.value}_page_history",
        lambda: PageHistory(store, mode, lambda: st.session_state.get("model_spec"), on_reopen),
    )
    try:
        opened = history.follow(loop, st.query_params.get(URL_KEY))
    except USER_ERRORS as exc:
        st.sidebar.error(f"Could not open the conversation: {images_as_links(str(exc))}")
        history.new(loop)
    else:
        if opened.other_mode is not None:  # a link to another page's conversation
            st.switch_page(PAGES[opened.other_mode], query_params={URL_KEY: st.query_params[URL_KEY]})
    _set_url(loop.history)
    with st.sidebar.expander("Conversations", expanded=True, icon=":material/history:"):
        _panel(mode, loop, history)
    return history


def _panel(mode: Mode, loop: HoldsHistory, history: PageHistory) -> None:
    key = mode.value
    st.button(
        "New conversation",
        key=f"{key}_history_new",
        icon=":material/add:",
        use_container_width=True,
        on_click=_act,
        args=(lambda: history.new(loop), loop),
    )
    error = st.session_state.pop("history_error", None) or history.error
    if error:
        st.error(images_as_links(str(error)))
    if history.recorder is not None and history.recorder.forked_from is not None:
        history.recorder.forked_from = None
        st.info("Another tab changed this conversation, so yours goes on as a copy (both are kept).")
    current = loop.history
    if len(current):
        st.text_input(
            "Title",
            value=current.title,
            key=f"{key}_history_title_{current.id}",
            on_change=lambda: history.rename(loop, st.session_state[f"{key}_history_title_{current.id}"]),
        )
        st.button(
            "Delete this conversation",
            key=f"{key}_history_delete",
            icon=":material/delete:",
            use_container_width=True,
            on_click=_act,
            args=(lambda: history.delete(loop), loop),
        )
    if history.last_deleted is not None:
        st.caption(f"Deleted “{_label(history.last_deleted.title) or 'untitled'}”.")
        st.button(
            "Undo delete",
            key=f"{key}_history_undo",
            icon=":material/undo:",
            use_container_width=True,
            on_click=_act,
            args=(lambda: history.undo_delete(loop), loop),
        )
    query = st.text_input(
        "Search conversations", key=f"{key}_history_search", placeholder="Words in titles and messages"
    )
    try:
        listed = history.conversations(query, limit=LISTED)
    except USER_ERRORS as exc:
        st.error(images_as_links(str(exc)))
        return
    if not query and current.id not in {info.id for info in listed}:
        # The open conversation, not saved yet (or older than the list): first, under its title so far.
        st.button(
            _label(current.title) or "New conversation",
            key=f"{key}_history_open_{current.id}",
            type="primary",
            use_container_width=True,
        )
    elif not listed:
        st.caption(f"Nothing matches “{query}”.")
    for info in listed:
        st.button(
            _label(info.title) or "Untitled",
            key=f"{key}_history_open_{info.id}",
            help=f"{info.message_count} messages · {info.updated:%Y-%m-%d %H:%M} UTC",
            type="primary" if info.id == current.id else "secondary",
            use_container_width=True,
            on_click=_act,
            args=(lambda conversation_id=info.id: history.open(loop, conversation_id), loop),
        )


def reopened_code_notice(
    history: PageHistory | None, run_cell: Callable[[str], Execution], loop: HoldsHistory
) -> None:
    """For a Code conversation opened from the history: say its kernel is new; offer to re-run its cells."""
    if history is None or history.reopened != loop.history.id:
        return
    cells = code_cells(loop.history.messages)
    st.info(NEW_KERNEL_NOTE if cells else NEW_KERNEL_NOTE.split(":")[0] + ".", icon=":material/restart_alt:")
    if cells and st.button(f"Re-run its {len(cells)} cells in the new kernel", key="code_history_rerun"):
        with st.spinner("Running the cells…"):
            report = rerun_cells(run_cell, cells)
        history.reopened = None
        (st.success if not report.failed else st.warning)(report.summary() + " See them under “Your cells”.")


def restart_for(workspace: CodeSession) -> None:
    """A reopened Code conversation gets a new kernel: restart the one this browser session holds."""
    if workspace.kernel_started:
        workspace.restart()
