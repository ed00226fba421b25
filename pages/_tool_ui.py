"""Streamlit pieces of the Tool page: the shared registry, the session, call blocks, the tools panel.

UI only: the loop is :mod:`workbench.modes.tool`, the registry is :mod:`tools`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import Any, Literal

import streamlit as st

from pages._common import session_object, show_markdown, stats_caption, turn_notice
from pages._login import signed_in
from tools import ToolRegistry, default_registry
from tools.mcp_config import CONFIG_VARIABLE
from tools.registry import PATH_VARIABLE
from workbench.chat_model import ChatModel
from workbench.errors import WorkbenchError
from workbench.messages import Message, Role
from workbench.modes.events import Event, MessageDone, Notice, TextDelta
from workbench.modes.tool import ToolOptions, ToolSession, default_tool_choice
from workbench.modes.tool_steps import CallStep, call_steps
from workbench.safe_markdown import escape_markdown, images_as_links
from workbench.shared import process_resource

SESSION_KEY = "tool_session"


def _registry(tools_path: str, mcp_config: str = "") -> ToolRegistry:
    """One registry per process, tool path and MCP configuration (the key: a changed one reloads).

    Process-wide in ``workbench.shared``, not ``st.cache_resource``: a browser's ``clear_cache`` would
    start another tool host beside the first.
    """
    # tool files load in the background, in the tool host; MCP servers connect in the background
    return process_resource("tools", f"{tools_path}\0{mcp_config}", lambda: default_registry(wait=False))


def tool_registry() -> ToolRegistry:
    """The registry shared by every browser session."""
    return _registry(os.environ.get(PATH_VARIABLE, ""), os.environ.get(CONFIG_VARIABLE, ""))


def tool_session(model: ChatModel) -> ToolSession:
    """This browser session's Tool-mode conversation (its own history, apart from the Chat page's)."""
    registry = tool_registry()
    session = session_object(
        SESSION_KEY,
        lambda: ToolSession(model, registry, options=ToolOptions(tool_choice=default_tool_choice(model))),
    )
    session.model = model
    session.registry = registry
    return session


def call_label(step: CallStep) -> str:
    """The status block's title: the tool's name and how the call went."""
    name = escape_markdown(step.name)  # the model's text: shown as written, never as Markdown (an image)
    if step.observation is None:
        return f"Calling {name}…"
    if step.raw is not None:
        return f"{name}: the call could not be read"
    return f"{name} failed" if step.failed else f"Called {name}"


def call_body(step: CallStep) -> None:
    """Inside a status block: the arguments, then the result or the error."""
    if step.raw is not None:
        st.caption("What the model wrote")
        st.code(step.raw, language="json")
    else:
        st.json(step.arguments if step.arguments is not None else {}, expanded=True)
    if step.observation is not None:
        result_body(step.observation)


def result_body(observation: Message) -> None:
    """A call's result, or its error in red."""
    if observation.error:
        st.error(images_as_links(observation.content))  # a tool's text: its images show as links
    else:
        st.caption(f"Result · {observation.metadata.get('duration_s', 0):.2f} s")
        st.code(observation.content, language=None, wrap_lines=True)


def show_call(step: CallStep) -> None:
    """A finished call as a status block (error state when it failed)."""
    state: Literal["error", "complete"] = "error" if step.failed else "complete"
    with st.status(call_label(step), state=state, expanded=False):
        call_body(step)


def live_turn(events: Generator[Event, None, None]) -> None:
    """Show a turn as it runs: text as it streams, a running status block per call, completed on its result."""
    text, area = "", st.empty()
    running: list[tuple[CallStep, Any]] = []
    try:
        for event in events:
            if isinstance(event, TextDelta):
                text += event.text
                show_markdown(text + "▌", area)
            elif isinstance(event, Notice):
                turn_notice("error" if event.level == "error" else "warning", event.text)
            elif isinstance(event, MessageDone) and event.message.role is Role.ASSISTANT:
                if event.message.content:
                    show_markdown(event.message.content, area)
                else:
                    area.empty()
                for step in call_steps(event.message):
                    block = st.status(call_label(step), state="running", expanded=True)
                    with block:
                        call_body(step)
                    running.append((step, block))
                if not event.message.tool_calls and not running:
                    stats_caption(event.message)
                text, area = "", st.empty()
            elif isinstance(event, MessageDone) and running:
                step, block = running.pop(0)
                step.observation = event.message
                with block:
                    result_body(event.message)
                block.update(
                    label=call_label(step), state="error" if step.failed else "complete", expanded=False
                )
    except WorkbenchError as exc:
        turn_notice("error", str(exc))
    finally:
        events.close()  # also runs when Stop ends the script: the generation halts, the partial text is kept


def tools_panel(session: ToolSession, key: str) -> None:
    """Every tool with its source and schema, an on/off switch for this conversation, load errors, Reload."""
    registry = session.registry
    top = st.columns([3, 1])
    summary = top[0].empty()  # filled in after the switches, so the count includes this run's changes
    if top[1].button("Reload", key=f"{key}_reload", help="Load the tool files again (new and changed ones)"):
        registry.reload(wait=False)
        st.rerun()
    for problem in registry.errors:
        st.error(f"**{escape_markdown(problem.source)}**: {escape_markdown(problem.message)}")
    mcp_servers(registry, key)
    for spec in registry.specs():
        row = st.columns([1, 4])
        on = row[0].toggle(
            escape_markdown(spec.name), value=session.is_enabled(spec.name), key=f"{key}_on_{spec.name}"
        )
        if on != session.is_enabled(spec.name):
            session.set_enabled(spec.name, on)
        with row[1].expander(escape_markdown(spec.description)):
            st.caption(f"Source: {escape_markdown(spec.source)}")
            st.json(_shown_schema(spec.schema()), expanded=True)
    enabled = sum(session.is_enabled(name) for name in registry.names())
    summary.caption(
        f"{enabled} of {len(registry)} tools on in this conversation · add yours in a folder named by {PATH_VARIABLE}"
    )


def mcp_servers(registry: ToolRegistry, key: str) -> None:
    """One line per MCP server: its state (ready with N tools, connecting, failed and why), Reconnect."""
    if registry.mcp is None:
        return
    for name, server in registry.mcp.servers.items():
        row = st.columns([4, 1])
        state = server.state.value
        icon = {"ready": ":material/check_circle:", "failed": ":material/error:"}.get(
            state, ":material/sync:"
        )
        row[0].markdown(f"{icon} MCP server **{name}**: {server.describe_state()}")
        if row[1].button("Reconnect", key=f"{key}_mcp_{name}", help=f"Connect to {name} again now"):
            registry.mcp.reconnect(name)
            st.rerun()
        tail = server.stderr_tail(8) if state != "ready" else ""
        if tail:
            st.code(tail, language=None)


def loading_status(registry: ToolRegistry) -> None:
    """ "Loading tools" and the file being imported while tools load in the background, else any problems."""
    if registry.loading:
        _loading_watch(registry)
    elif registry.errors:
        names = escape_markdown(", ".join(sorted({os.path.basename(e.source) for e in registry.errors})))
        st.warning(f"Some tools did not load ({names}): see Tools below.", icon=":material/warning:")


@st.fragment(run_every=1.0)
def _loading_watch(registry: ToolRegistry) -> None:
    """Refreshed every second while loading; reruns the whole page once the tools are there."""
    if not registry.loading or not signed_in():  # signed out: the page's login gate
        st.rerun()  # the whole page, so the tools panel and the model see the new tools
    file = registry.loading_file
    shown = f" importing {escape_markdown(file)}" if file else ""
    st.info("Loading tools…" + shown, icon=":material/hourglass_top:")


def _shown_schema(schema: dict[str, Any]) -> Any:
    return json.loads(json.dumps(schema, default=str))
