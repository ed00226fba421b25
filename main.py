"""Workbench: ``streamlit run main.py``. The frame: page config and navigation.

The pages import the core (``workbench``, ``tools``, ``kernel``: installed with ``pip install -e .``) and
their helpers as ``pages._common``; ``streamlit run`` puts this file's folder on ``sys.path`` for those.
Each page calls ``pages._login.login_gate`` first thing (a page can run without this file, see there),
and the gate draws the navigation links once the visitor is in; so the navigation here is hidden.
"""

from __future__ import annotations

import streamlit as st

from pages._login import NAVIGATION

# An emoji icon: Streamlit draws it locally, where a ":material/...:" page icon is fetched from a font host.
st.set_page_config(page_title="Workbench", page_icon="🛠️", layout="wide")
pages = [
    st.Page(path, title=title, icon=icon, default=index == 0)
    for index, (path, title, icon) in enumerate(NAVIGATION)
]
st.navigation(pages, position="hidden").run()
