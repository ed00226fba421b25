"""The door of the app: run by main.py before ``st.navigation``, so no page renders for a stranger.

UI only: the decision and the password check live in :mod:`workbench.auth`.
"""

from __future__ import annotations

import os
import sys

import streamlit as st

from workbench.auth import Access, LoginGuard, access_for

SIGNED_IN = "workbench_signed_in"


@st.cache_resource(show_spinner=False)
def login_guard(password: str) -> LoginGuard:
    """One guard per process, so a lock-out holds across browser sessions."""
    return LoginGuard(password)


@st.cache_resource(show_spinner=False)
def warn_once(message: str) -> bool:
    """Print ``message`` to the server's log once per process."""
    print(message, file=sys.stderr, flush=True)
    return True


def login_gate() -> None:
    """Let the session in, or show why not (a login form, or a refusal) and stop the script."""
    decision = access_for(st.get_option("server.address"))
    if decision.access is Access.OPEN:
        return
    if decision.access is Access.NO_AUTH:
        warn_once(decision.message)
        st.sidebar.warning("No login (--no-auth): anyone who can reach this address can use this app.")
        return
    if decision.access is Access.REFUSED:
        st.error(decision.message)
        st.stop()
    if st.session_state.get(SIGNED_IN):
        return
    guard = login_guard(os.environ["WORKBENCH_PASSWORD"])
    st.title("Workbench")
    with st.form("login"):
        attempt = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        outcome = guard.check(attempt, st.context.ip_address or "")
        if outcome.ok:
            st.session_state[SIGNED_IN] = True
            st.rerun()
        st.error(outcome.message)
    st.stop()
