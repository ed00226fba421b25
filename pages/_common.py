"""Streamlit pieces shared by the pages: the cached model, the model sidebar, sampling controls.

UI only: every behaviour lives in ``workbench``. One copy of a model per (model, device, dtype) serves
every page and every browser session: :func:`workbench.shared.shared_model`, not ``st.cache_resource``
(which any browser can empty with a ``clear_cache`` message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pages._downloads import (
    begin_download,
    cached_names,
    download_controls,
    download_panel,
    loaded_after_download,
    needs_download,
)
from pages._login import signed_in
from workbench.chat_model import ChatModel
from workbench.errors import WorkbenchError
from workbench.messages import Message
from workbench.models.generation import GenerationStats, SamplingSettings
from workbench.models.spec import EMBEDDED, SPEC_OPTIONS, ModelSpec, convert_option, is_remote_source
from workbench.safe_markdown import escape_markdown, images_as_links
from workbench.shared import SharedModel, shared_model

T = TypeVar("T")


MODELS_KEPT = 3
"""Models the app keeps loaded for its sessions at most (the least recently chosen go first)."""


def model_slot(spec: ModelSpec) -> SharedModel:
    """The process-wide slot of a model; loading happens in :func:`current_model`."""
    return shared_model(spec, keep=MODELS_KEPT)


def session_object(key: str, factory: Callable[[], T]) -> T:
    """Return ``st.session_state[key]``, creating it with ``factory`` on first use."""
    if key not in st.session_state:
        st.session_state[key] = factory()
    return st.session_state[key]


def _model_form() -> None:
    """The sidebar form that chooses another model; a failed load keeps the current one.

    One input per :data:`~workbench.models.spec.SPEC_OPTIONS` entry: a choice, a switch or a text.
    """
    current: ModelSpec = st.session_state["model_spec"]
    values: dict[str, object] = {}
    served: list[str] = []
    picked = ""
    expander = st.sidebar.expander("Change model")
    with expander, st.form("model_form", border=False):
        cached = cached_names()
        chosen = st.selectbox(
            "Cached models",
            ["(the model below)", *cached],
            help="models in the Hugging Face cache (download more below); Load loads the one chosen here",
        )
        for option in SPEC_OPTIONS:
            value = getattr(current, option.field)
            label = option.field.replace("_", " ").capitalize()
            if option.field == "source":
                values[option.field] = st.text_input("Model", value=value, help=option.help)
                served = _server_models(current.source, current.api_key)
                if served:
                    model_now = current.source.partition("#")[2]
                    picked = st.selectbox(
                        "Server model",
                        served,
                        index=served.index(model_now) if model_now in served else 0,
                        help="the models the server lists (GET /v1/models)",
                    )
            elif option.secret:
                # Never sent to the browser: the field starts empty, and empty keeps the current secret.
                text = st.text_input(
                    label,
                    value="",
                    type="password",
                    placeholder="set (leave empty to keep it)" if value else "",
                    help=option.help,
                )
                values[option.field] = convert_option(option.field, text) if text else value
            elif option.choices is not None:
                values[option.field] = st.selectbox(
                    label, option.choices, index=option.choices.index(value), help=option.help
                )
            elif isinstance(value, bool):
                values[option.field] = st.checkbox(label, value=value, help=option.help)
            else:
                text = st.text_input(label, value=str(value), help=option.help)
                values[option.field] = convert_option(option.field, text)
        if st.form_submit_button("Load"):
            values["source"] = str(values["source"]).strip() or EMBEDDED
            if chosen in cached:
                values["source"] = chosen
            if served and values["source"] == current.source:
                from workbench.models.remote_backend import with_model

                values["source"] = with_model(current.source, picked)
            wanted = current.replace(**values)
            if wanted != current:
                st.session_state["model_previous"] = current
                st.session_state["model_spec"] = wanted
    with expander:
        download_controls(current)


@st.cache_data(ttl=30, show_spinner=False)
def _server_models(source: str, api_key: str) -> list[str]:
    """The models a remote source's server lists; none for a local model or an unreachable server."""
    if not is_remote_source(source):
        return []
    from workbench.models.remote_backend import server_models

    try:
        return server_models(source, api_key)
    except WorkbenchError:  # the load itself reports what is wrong
        return []


def current_model() -> ChatModel:
    """Show the model sidebar and return the loaded shared model (loading it with progress).

    Stops the page with an error if no model can be loaded at all.
    """
    if "model_spec" not in st.session_state:
        st.session_state["model_spec"] = ModelSpec.from_env()
    st.session_state["model_spec"] = loaded_after_download(st.session_state["model_spec"])
    _model_form()
    spec: ModelSpec = st.session_state["model_spec"]
    if needs_download(spec):  # a Hub name not cached yet: download it with a progress bar, then load it
        begin_download(spec.source, spec.trust_remote_code, load_after=spec, retry=False)
        previous = st.session_state.pop("model_previous", None)
        if previous is None or previous == spec:
            download_panel()
            st.stop()  # nothing to run until it is there; the panel reruns the page when it is
        st.session_state["model_spec"] = spec = previous  # keep working with the model we had meanwhile
    download_panel()
    slot = model_slot(spec)
    try:
        if slot.loaded:
            model = slot.get()
        else:
            with st.status(f"Loading {spec.label}...", expanded=True) as status:
                model = slot.get(progress=status.write)
                status.update(
                    label=f"Loaded {spec.label} in {model.info.load_seconds:.1f} s",
                    state="complete",
                    expanded=False,
                )
    except WorkbenchError as exc:
        previous = st.session_state.pop("model_previous", None)
        st.sidebar.error(f"Could not load {escape_markdown(spec.label)}: {images_as_links(str(exc))}")
        if previous is None or previous == spec:
            show_error(exc)
            st.stop()
        st.session_state["model_spec"] = previous  # keep running with the model we had
        st.sidebar.info(f"Still using {escape_markdown(previous.label)}.")
        model = model_slot(previous).get()
    info = model.info
    st.sidebar.caption(images_as_links(info.summary()))  # the name comes from the model's file or server
    if info.device == "remote":
        st.sidebar.caption(f"remote: {escape_markdown(info.loaded_from)}")
        learned = getattr(model.backend, "status_line", lambda: "")()  # what this server accepts
        if learned:
            st.sidebar.caption(escape_markdown(learned))
    return model


def sampling_controls(key: str, defaults: SamplingSettings, current: SamplingSettings) -> SamplingSettings:
    """Sidebar sliders for sampling, keyed per page; start from the model's defaults.

    Settings out of range (or a model default outside a slider's range) show an error in the sidebar
    and ``current`` is kept, so the page goes on running.
    """
    try:
        return _sampling_sliders(key, defaults)
    except WorkbenchError as exc:
        st.sidebar.error(f"Sampling settings: {exc} The previous settings are kept.")
    except StreamlitAPIException as exc:  # e.g. a model's default outside a slider's range
        st.sidebar.error(f"Sampling settings: {exc} The previous settings are kept.")
    return current


def _sampling_sliders(key: str, defaults: SamplingSettings) -> SamplingSettings:
    with st.sidebar.expander("Sampling", expanded=False):
        temperature = st.slider(
            "Temperature",
            0.0,
            2.0,
            defaults.temperature,
            0.05,
            key=f"{key}_temperature",
            help="0 means greedy decoding",
        )
        top_p = st.slider("Top p", 0.05, 1.0, defaults.top_p, 0.05, key=f"{key}_top_p")
        max_new = st.number_input(
            "Max new tokens", 1, 8192, defaults.max_new_tokens, 32, key=f"{key}_max_new"
        )
        penalty = st.slider(
            "Repetition penalty", 1.0, 2.0, defaults.repetition_penalty, 0.05, key=f"{key}_penalty"
        )
    return defaults.with_(
        temperature=temperature, top_p=top_p, max_new_tokens=int(max_new), repetition_penalty=penalty
    )


def stats_caption(message: Message) -> None:
    """A small line under an answer: tokens, tokens/s, and whether it was stopped or interrupted."""
    stats = message.stats
    if message.metadata.get("interrupted"):  # a checkpoint of an answer cut by a crash (see the recorder)
        st.caption(message.failure or "Interrupted.")
    elif stats:
        st.caption(GenerationStats.from_dict(stats).summary())


def rerun_when_behind(key: str, fingerprint: Callable[[], object], live: bool) -> None:
    """While something runs, check every second whether the page is behind its session and rerun it.

    A stopped script (Stop, a click) cannot draw what ends after it: the run an interrupt ended, the
    stopped mark and stats of a reply. The page stores what it drew in ``st.session_state[key]`` at its
    end; this fragment compares that with ``fingerprint()`` and reruns the whole page when they differ.
    """

    def check() -> None:
        ctx = get_script_run_ctx()
        if ctx is None or not ctx.fragment_ids_this_run:
            return  # drawn inside a full run: that run draws the truth itself
        if not signed_in():
            st.rerun()  # the whole page, and so its login gate
        seen = st.session_state.get(key)
        if seen is not None and fingerprint() != seen:
            st.rerun()  # the whole page

    st.fragment(check, run_every=1.0 if live else None)()


def show_error(exc: Exception) -> None:
    """Show a WorkbenchError as an error box (the page keeps running); an image in it shows as a link."""
    st.error(images_as_links(str(exc)))


_KEPT = "turn_notices"
_BOXES = {"error": st.error, "warning": st.warning}


def turn_notice(level: str, text: str) -> None:
    """Show a notice of a turn being drawn, and again after :func:`end_turn`'s rerun (images as links)."""
    text = images_as_links(text)
    _BOXES.get(level, st.info)(text)
    st.session_state.setdefault(_KEPT, []).append((level, text))


def end_turn() -> None:
    """A turn has been drawn as it ran: rerun, so that it is drawn with its controls (Edit, the pager...)."""
    st.rerun()


def kept_notices() -> None:
    """Show again, once, the notices of the turn drawn before :func:`end_turn`'s rerun."""
    for level, text in st.session_state.pop(_KEPT, []):
        _BOXES.get(level, st.info)(text)


def show_markdown(text: str, where: Any = st) -> None:
    """Markdown from a conversation (imports, models, tools, the user): images show as links, never fetched."""
    where.markdown(images_as_links(text))


def stream_markdown(chunks: Iterable[str], waiting: str | None = None) -> str:
    """Show text as it streams (as ``st.write_stream`` does), images as links; return the whole text.

    ``waiting`` (the model's queue: "Waiting for a free slot (n ahead)") shows until the first chunk.
    """
    slot, text = st.empty(), ""
    if waiting:
        slot.caption(waiting)
    for chunk in chunks:
        text += chunk
        slot.markdown(images_as_links(text))
    return text


__all__ = [
    "current_model",
    "rerun_when_behind",
    "sampling_controls",
    "session_object",
    "show_error",
    "show_markdown",
    "stats_caption",
    "stream_markdown",
]
