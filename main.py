"""Workbench: ``streamlit run main.py``. The frame: page config, navigation and the shared sidebar."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Pages import the core and their shared helpers by name; make both importable however we are started.
_ROOT = Path(__file__).resolve().parent
for _path in (str(_ROOT), str(_ROOT / "pages")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

st.set_page_config(page_title="Workbench", page_icon="🛠️", layout="wide")

pages = [
    st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
]
for _file, _title, _icon in (
    ("pages/tool.py", "Tool", "🧰"),
    ("pages/tools.py", "Tools", "📚"),
    ("pages/code.py", "Code interpreter", "🐍"),
):
    if (_ROOT / _file).is_file():
        pages.append(st.Page(_file, title=_title, icon=_icon))
st.navigation(pages).run()
