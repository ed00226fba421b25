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
pages = [st.Page(path, title=title, icon=icon) for path, title, icon in NAVIGATION[1:]]
chat, title, icon = NAVIGATION[0]
pages = [
    st.Page(chat, title=title, icon=icon, default=True, url_path="home"),  # served at "/"
    # /chat too (the URL a page opened in Streamlit's pages-folder mode shows): else "Page not found".
    st.Page(chat, title=title, icon=icon, url_path="chat", visibility="hidden"),
    *pages,
]
st.navigation(pages, position="hidden").run()
