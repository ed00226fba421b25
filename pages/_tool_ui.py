"""Streamlit pieces of the Tool page: the shared registry, the session, call blocks, the tools panel.

UI only: the loop is :mod:`workbench.modes.tool`, the registry is :mod:`tools`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator
from typing import Any, Literal

import streamlit as st

from pages._branches import answer_controls, user_message
from pages._common import session_object, show_markdown, stats_caption, turn_notice
from pages._documents import show_sources
from pages._images import show_message_images
from pages._login import signed_in
from tools import ToolRegistry, default_registry
from tools.mcp_config import CONFIG_VARIABLE
from tools.registry import PATH_VARIABLE
from workbench.chat_model import ChatModel
from workbench.errors import WorkbenchError
from workbench.messages import Message, Role
from workbench.modes.events import (
    CallProgress,
    ConfirmationNeeded,
    Event,
    MessageDone,
    Notice,
    TextDelta,
    Waiting,
)
from workbench.modes.tool import ToolOptions, ToolSession, default_tool_choice
from workbench.modes.tool_steps import CallStep, call_steps, group_exchanges
from workbench.safe_markdown import escape_markdown, images_as_links
from workbench.shared import process_resource
from workbench.store.page_history import PageHistory

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
        lambda: ToolSession(
            model,
            registry,
            # calls to MCP servers configured with "confirm" wait for Run or Skip in their status block
            options=ToolOptions(tool_choice=default_tool_choice(model), ask_confirmation=True),
        ),
    )
    session.model = model
    session.registry = registry
    return session


def call_label(step: CallStep, waiting: bool = False) -> str:
    """The status block's title: the tool's name and how the call went (``waiting``: for Run or Skip)."""
    name = escape_markdown(step.name)  # the model's text: shown as written, never as Markdown (an image)
    if waiting:
        return f"{name}: run this call?"
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


def show_call(step: CallStep, session: ToolSession | None = None) -> tuple[Any, bool | None]:
    """A call as a status block: finished (error state when it failed), running, or waiting for Run or Skip.

    Returns:
        The block, and the user's answer for the call waiting for confirmation in ``session``: True
        (Run), False (Skip) or None (no answer, or not that call).
    """
    pending = session.pending if session is not None else None
    if step.observation is None and pending is not None and pending.call.id == step.id:
        block = st.status(call_label(step, waiting=True), state="running", expanded=True)
        with block:
            call_body(step)
            answer = _run_or_skip(step, pending.server)
        block.update(state="running", expanded=True)  # leaving the block marked it complete
        return block, answer
    if step.observation is None:  # a call still to run (after a waiting one, or a stopped turn)
        block = st.status(call_label(step), state="running", expanded=False)
        with block:
            call_body(step)
        block.update(state="running", expanded=False)
        return block, None
    else:
        state: Literal["error", "complete"] = "error" if step.failed else "complete"
        block = st.status(call_label(step), state=state, expanded=False)
    with block:
        call_body(step)
    return block, None


def _run_or_skip(step: CallStep, server: str) -> bool | None:
    """The Run and Skip buttons of a call waiting for confirmation; True, False, or None (not yet)."""
    slot = st.empty()
    with slot.container():
        st.caption(f"MCP server **{escape_markdown(server)}** asks you to confirm each call before it runs.")
        left, right = st.columns(2)
        run = left.button("Run", key=f"tool_run_{step.id}", type="primary", use_container_width=True)
        skip = right.button("Skip", key=f"tool_skip_{step.id}", use_container_width=True)
    if run or skip:
        slot.empty()  # answered: the buttons go, the call runs (or is skipped) below
        return bool(run)
    return None


RERUNS_TOOLS = (
    "Regenerate runs this answer's tool calls again, and so does Edit: tools may have side effects."
)


def _show_user(message: Message) -> None:
    show_message_images(message)
    show_markdown(message.content)


def show_history(session: ToolSession, history: PageHistory | None = None) -> Callable[[], None] | None:
    """The conversation: each user message, then one assistant bubble with the model's texts and calls.

    Each user message has Edit and each answer Regenerate, with the ``‹ n/m ›`` pager and Branch
    (pages/_branches.py); the page says that both run the tool calls again.

    Returns:
        When the user has just answered Run or Skip for the call waiting for confirmation: a function
        that shows the rest of the turn in the last bubble (call it after the chat input is drawn).
    """
    decision: bool | None = None
    waiting: list[tuple[CallStep, Any]] = []
    bubble: Any = None
    for exchange in group_exchanges(session.messages):
        if exchange.user is not None:
            with st.chat_message("user"):
                user_message(session, history, exchange.user, "tool", _show_user)
        if not exchange.replies:
            continue
        bubble, waiting = st.chat_message("assistant"), []
        with bubble:
            for reply in exchange.replies:
                if reply.message.content:
                    show_markdown(reply.message.content)
                for step in reply.calls:
                    block, answer = show_call(step, session)
                    decision = answer if answer is not None else decision
                    if step.observation is None:
                        waiting.append((step, block))
            for reply in exchange.replies:
                show_sources(reply.message)  # the reply that read the documents keeps them
            stats_caption(exchange.replies[-1].message)
            first = exchange.replies[0].message
            if not session.busy and session.pending is None and first.role is Role.ASSISTANT:
                answer_controls(session, history, first, "tool", note=RERUNS_TOOLS)
                if any(reply.calls for reply in exchange.replies):
                    st.caption(RERUNS_TOOLS)
    if decision is None or bubble is None:
        return None
    run, blocks, last = decision, waiting, bubble

    def resume() -> None:
        with last:
            live_turn(session.decide(run), blocks)

    return resume


def live_turn(
    events: Generator[Event, None, None],
    running: list[tuple[CallStep, Any]] | None = None,
    failed: Callable[[WorkbenchError], None] | None = None,
) -> None:
    """Show a turn as it runs: text as it streams, a running status block per call, completed on its result.

    Args:
        events: The turn's events (``session.send(...)`` or ``session.decide(...)``).
        running: Status blocks already shown for calls still waiting for their result, in order
            (a turn resumed after Run or Skip).
        failed: Told the error that ended the turn, before it is shown (the page keeps a message the
            session took back).
    """
    text, area = "", st.empty()
    running = list(running or [])
    slots: dict[int, Any] = {}
    paused = False
    try:
        for event in events:
            if isinstance(event, CallProgress):
                _show_progress(event, running, slots)
            elif isinstance(event, ConfirmationNeeded):
                paused = True  # the page is drawn again below, with Run and Skip in the call's block
            elif isinstance(event, TextDelta):
                text += event.text
                show_markdown(text + "▌", area)
            elif isinstance(event, Waiting):
                area.caption(event.text)  # the first text takes its place
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
                    block.update(state="running", expanded=True)  # leaving the block marked it complete
                    running.append((step, block))
                if not event.message.tool_calls and not running:
                    stats_caption(event.message)
                text, area = "", st.empty()
            elif isinstance(event, MessageDone) and running:
                step, block = running.pop(0)
                step.observation = event.message
                slot = slots.pop(id(block), None)
                if slot is not None:
                    slot.empty()
                with block:
                    result_body(event.message)
                block.update(
                    label=call_label(step), state="error" if step.failed else "complete", expanded=False
                )
    except WorkbenchError as exc:
        if failed is not None:
            failed(exc)
        turn_notice("error", str(exc))
    finally:
        events.close()  # also runs when Stop ends the script: the generation (or the call) halts
    if paused:
        st.rerun()


def _show_progress(event: CallProgress, running: list[tuple[CallStep, Any]], slots: dict[int, Any]) -> None:
    """A running call's progress in its status block: the title, and a bar when the server gives a total."""
    found = next(((s, b) for s, b in running if s.id == event.call.id), None)
    if found is None:
        return
    step, block = found
    block.update(label=f"{call_label(step)} {escape_markdown(event.describe())}", expanded=True)
    if event.progress is None:
        return
    if id(block) not in slots:
        with block:
            slots[id(block)] = st.empty()
        block.update(state="running", expanded=True)
    text = escape_markdown(event.message or "")
    if event.total:
        slots[id(block)].progress(min(1.0, max(0.0, event.progress / event.total)), text=text)
    elif text:
        slots[id(block)].caption(text)


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
    slot = (
        st.empty()
    )  # always one element here, so what follows keeps its place (an open Tools panel stays open)
    if registry.loading:
        file = registry.loading_file
        shown = f" importing {escape_markdown(file)}" if file else ""
        slot.info("Loading tools…" + shown, icon=":material/hourglass_top:")
    elif registry.errors:
        names = escape_markdown(", ".join(sorted({os.path.basename(e.source) for e in registry.errors})))
        slot.warning(f"Some tools did not load ({names}): see Tools below.", icon=":material/warning:")


def refresh_while_loading(registry: ToolRegistry) -> None:
    """At the end of the page: while tools load, draw the page again in a second (the panel, the model's tools).

    A whole-page rerun rather than a ``run_every`` fragment: a page session whose fragment had refreshed
    itself and then rerun the page lost the chat input's Stop button in every later turn.
    """
    if registry.loading and signed_in():
        time.sleep(1.0)
        st.rerun()


def _shown_schema(schema: dict[str, Any]) -> Any:
    return json.loads(json.dumps(schema, default=str))
