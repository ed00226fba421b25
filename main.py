"""Workbench: ``streamlit run main.py``. The frame: page config, navigation and the shared sidebar."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Pages import the core (workbench, tools, kernel) and their helpers (pages._common) from the repo root.
_ROOT = Path(__file__).resolve().parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

st.set_page_config(page_title="Workbench", page_icon=":material/handyman:", layout="wide")

pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/tool.py", title="Tool", icon=":material/build:"),
    st.Page("pages/code.py", title="Code interpreter", icon=":material/terminal:"),
]
st.navigation(pages).run()
