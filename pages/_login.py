"""The door of the app: every page calls :func:`login_gate` first thing, so no page renders for a stranger.

Why every page and not main.py alone: a page opened by URL can run without main.py (Streamlit's legacy
pages-folder mode, decided once per process at the first session, so concurrent first loads of
``/chat`` run the page file itself). The gate keeps no state of its own besides this browser session's
"signed in" mark: the password check and the lock-outs live in :mod:`workbench.auth`, in one guard per
process that no browser message can clear. The navigation is drawn here too, and only past the gate
(main.py's ``st.navigation`` is hidden, and so is Streamlit's own list of the page files, by
``client.showSidebarNavigation = false`` in ``.streamlit/config.toml``): before the password the sidebar
shows nothing.
"""

from __future__ import annotations

import os

import streamlit as st

from workbench.auth import PASSWORD_VARIABLE, Access, access_for, process_guard, warn_once

SIGNED_IN = "workbench_signed_in"
NAVIGATION = [
    ("pages/chat.py", "Chat", ":material/chat:"),
    ("pages/tool.py", "Tool", ":material/build:"),
    ("pages/code.py", "Code interpreter", ":material/terminal:"),
]
"""The pages as main.py registers them: file, title, icon (Material icons come with Streamlit's font)."""


def login_gate() -> None:
    """Let this script run go on, or show why not (a login form, or a refusal) and stop it.

    Past the gate, draws the navigation at the top of the sidebar.
    """
    leave_pages_folder_mode()
    decision = access_for(st.get_option("server.address"))
    if decision.access is Access.REFUSED:
        st.error(decision.message)
        st.stop()
    if decision.access is Access.PASSWORD and not st.session_state.get(SIGNED_IN):
        _login_form()  # stops the run
    navigation_links()
    if decision.access is Access.NO_AUTH:
        warn_once(decision.message)
        st.sidebar.warning("No login (--no-auth): anyone who can reach this address can use this app.")


def signed_in() -> bool:
    """Whether this session may see the pages now (no drawing): for fragments, which rerun without the page.

    A fragment's own rerun runs only its function, not the page and its gate; one that finds the
    session no longer signed in (a ``clear_cache`` message empties its session state) reruns the page.
    """
    decision = access_for(st.get_option("server.address"))
    if decision.access is Access.PASSWORD:
        return bool(st.session_state.get(SIGNED_IN))
    return decision.access is not Access.REFUSED


def _login_form() -> None:
    guard = process_guard(os.environ[PASSWORD_VARIABLE])
    st.title("Workbench")
    with st.form("login"):
        attempt = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        address = st.context.ip_address
        outcome = guard.check(attempt, address if isinstance(address, str) else "")  # "": not known
        if outcome.ok:
            st.session_state[SIGNED_IN] = True
            st.rerun()  # the same URL: the page and conversation it names
        st.error(outcome.message)
    st.stop()


def navigation_links() -> None:
    """The pages as links at the top of the sidebar (where Streamlit's navigation would be)."""
    with st.sidebar.container():
        for path, title, icon in NAVIGATION:
            st.page_link(path, label=title, icon=icon)


# Whether this process has checked Streamlit's pages-folder mode (see leave_pages_folder_mode).
_pages_folder_mode_checked = False


def leave_pages_folder_mode() -> None:
    """Hand a page opened by URL on a fresh server (``/tool``) back to main.py's ``st.navigation``.

    Why a private attribute: Streamlit decides once per process, when the first browser session
    starts, whether the app uses its legacy pages-folder mode, by whether a folder named ``pages``
    sits next to the main script (``PagesManager.uses_pages_directory``). In that mode a page opened
    by URL runs on its own, without main.py's frame (navigation, page config); only a call of
    ``st.navigation`` switches the mode off, and main.py makes none until it runs. Streamlit offers no
    supported switch (no config option; its advice is to rename the folder, and ours is called
    ``pages`` on purpose), so this turns the flag off and reruns, and main.py takes over.

    Acts at most once per process, at the first page run, as Streamlit decides once per process.
    (Streamlit's ``AppTest`` decides again before every run; a rerun at each would swallow the
    clicks a test makes.) Guarded: with a Streamlit that lacks this internal it does nothing.
    Called by :func:`login_gate`, which every page calls first. Security does not depend on it: the
    gate itself runs in every page, whichever script Streamlit runs.
    """
    global _pages_folder_mode_checked
    if _pages_folder_mode_checked:
        return
    _pages_folder_mode_checked = True
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", None) is True:
        PagesManager.uses_pages_directory = False
        st.rerun()
