"""The sidebar's model downloads: a name field with Download, the cached models, a live progress bar.

UI only: the download runs in :mod:`workbench.models.hub_jobs` (a background thread per name); this
module starts it, draws its progress every half second (``st.progress`` with MB/s and time left) with a
Stop button, and when it ends reruns the page once (the cached list grows; a model chosen with Load
before it was downloaded is loaded).
"""

from __future__ import annotations

import streamlit as st

from workbench.models.hub_cache import cached_model, list_cached
from workbench.models.hub_jobs import DONE, FAILED, RUNNING, STOPPED, download_job, start_download
from workbench.models.hub_names import parse_hub_name
from workbench.models.spec import ModelSpec
from workbench.safe_markdown import escape_markdown, images_as_links

_ACTIVE = "hub_download"  # the name this session is downloading (or last downloaded)
_LOAD_AFTER = "hub_load_after"  # the spec to load once that download is done
_SEEN_END = "hub_download_seen_end"


def cached_names() -> list[str]:
    """The names of the cached models, for the sidebar's list."""
    return [model.name for model in list_cached()]


def needs_download(spec: ModelSpec) -> bool:
    """Whether a spec names a Hub model that is not in the cache yet."""
    name = parse_hub_name(spec.source)
    return name is not None and cached_model(name) is None


def begin_download(
    name: str, trust_remote_code: bool, load_after: ModelSpec | None = None, retry: bool = True
) -> None:
    """Start (or join) the download of ``name`` for this session; load ``load_after`` when it is done.

    With ``retry`` False, a download of this name that this session saw fail or stop is not started
    again (a page rerun is no new request; the Download button is).
    """
    job = download_job(name)
    ended = job is not None and job.state in (FAILED, STOPPED)
    if not retry and ended and st.session_state.get(_ACTIVE) == name.strip():
        return
    start_download(name, trust_remote_code)
    st.session_state[_ACTIVE] = name.strip()
    st.session_state[_SEEN_END] = False
    if load_after is not None:
        st.session_state[_LOAD_AFTER] = load_after
    else:
        st.session_state.pop(_LOAD_AFTER, None)


def download_controls(current: ModelSpec) -> None:
    """A name field and a Download button (inside the Change model expander)."""
    name = st.text_input(
        "Download by name",
        key="hub_name",
        placeholder="ORG/REPO-GGUF:Q4_K_M or ORG/REPO",
        help="a model on the Hugging Face Hub (HF_ENDPOINT for a mirror, HF_TOKEN for gated ones); "
        "it is kept in the Hugging Face cache and listed under Cached models",
    )
    if st.button("Download", key="hub_download_button"):
        if parse_hub_name(name) is None:
            st.error("Give a model name: ORG/REPO (transformers) or ORG/REPO-GGUF:QUANT (llama.cpp).")
        else:
            begin_download(name, current.trust_remote_code)


def loaded_after_download(current: ModelSpec) -> ModelSpec:
    """The spec to use now: the one waiting for its download when that download is done, else ``current``."""
    wanted = st.session_state.get(_LOAD_AFTER)
    job = download_job(st.session_state.get(_ACTIVE, ""))
    if wanted is None or job is None or job.state == RUNNING:
        return current
    st.session_state.pop(_LOAD_AFTER, None)
    if job.state != DONE:
        return current
    if wanted != current:
        st.session_state["model_previous"] = current
    return wanted


def download_panel() -> None:
    """The progress of this session's download, redrawn every half second while it runs."""
    job = download_job(st.session_state.get(_ACTIVE, ""))
    if job is None:
        return
    with st.sidebar:
        st.fragment(_panel, run_every=0.5 if job.state == RUNNING else None)()


def _panel() -> None:
    job = download_job(st.session_state.get(_ACTIVE, ""))
    if job is None:
        return
    name = escape_markdown(job.canonical or job.name)
    if job.state == RUNNING:
        st.progress(job.fraction, text=escape_markdown(job.summary()))
        for note in job.notes[:2]:  # the quantization chosen, the size and the free space
            st.caption(escape_markdown(note))
        if st.button("Stop download", key="hub_stop"):
            job.stop()
        return
    if not st.session_state.get(_SEEN_END):
        st.session_state[_SEEN_END] = True
        st.rerun()  # the whole page: the cached list, and the model waiting for this download
    if job.state == DONE:
        st.success(f"Downloaded {name}; choose it under Cached models.")
    elif job.state == STOPPED:
        st.warning(f"Stopped the download of {name}. Download again to fetch what is missing.")
    elif job.state == FAILED:
        st.error(f"Could not download {name}: {images_as_links(job.error)}")
