"""Workbench: ``streamlit run main.py``. The frame: page config, navigation and the shared sidebar.

The pages import the core (``workbench``, ``tools``, ``kernel``: installed with ``pip install -e .``) and
their helpers as ``pages._common``; ``streamlit run`` puts this file's folder on ``sys.path`` for those.
"""

from __future__ import annotations

import streamlit as st

from pages._login import login_gate

st.set_page_config(page_title="Workbench", page_icon=":material/handyman:", layout="wide")
login_gate()  # before st.navigation: a stranger sees the login form and no page

pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/tool.py", title="Tool", icon=":material/build:"),
    st.Page("pages/code.py", title="Code interpreter", icon=":material/terminal:"),
]
st.navigation(pages).run()
