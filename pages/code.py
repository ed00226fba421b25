"""Code interpreter: the model writes Python that runs in this browser session's sandboxed kernel.

UI only: the loop, the kernel, files and cells live in ``workbench.modes.code``. One kernel per browser
session, from the process-wide pool; the user's own cells run in the same kernel as the model's code.
"""

from __future__ import annotations

import functools
from typing import Any

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from kernel import FileInfo, KernelLease, KernelPool
from pages._branches import BranchAction, answer_controls, branch_error, run_action, take_action, user_message
from pages._common import (
    current_model,
    end_turn,
    kept_notices,
    rerun_when_behind,
    sampling_controls,
    session_object,
    show_error,
    show_markdown,
    stats_caption,
    turn_notice,
)
from pages._documents import (
    FILE_TYPES,
    attach_sent,
    attached_documents,
    documents_sidebar,
    show_sources,
    source_picker,
)
from pages._history import conversation_sidebar, reopened_code_notice, restart_for
from pages._images import (
    IMAGE_TYPES,
    keep_if_taken_back,
    message_box_prompt,
    send_with_images,
    show_image,
    show_message_images,
)
from pages._login import login_gate
from workbench.conversation import Mode
from workbench.errors import USER_ERRORS
from workbench.execution_record import ExecutionRecord
from workbench.messages import Message, Role
from workbench.modes.code import CodeRunning, CodeSession, CodeTurn, release_when_gone, shared_pool
from workbench.modes.code_format import sandboxed_html, split_code
from workbench.modes.code_runs import CodeRun
from workbench.modes.events import MessageDone, Notice, TextDelta, Waiting

# Seconds Interrupt and Restart wait for the run to end, so the same rerun shows it.
INTERRUPT_WAIT_S = 5.0
# Files listed at the top level of the files panel before the rest collapse.
FILES_SHOWN = 20

TABLE_STYLE = (
    "<style>table.dataframe{border-collapse:collapse;font-size:0.9rem}"
    "table.dataframe th,table.dataframe td{border:1px solid rgba(128,128,128,.3);padding:2px 8px;text-align:right}"
    "table.dataframe thead th{background:rgba(128,128,128,.1)}</style>"
)


def streamlit_session_id() -> str:
    """This browser session's id in Streamlit's runtime (the pool's key for its kernel)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "default"


def streamlit_session_alive(session_id: str) -> bool:
    """Whether Streamlit still has a connected browser session with this id."""
    if not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(session_id)


def kernel_pool() -> Any:
    """The process-wide pool: one kernel per browser session, a warm spare, an idle limit.

    Module-level in ``workbench`` (not ``st.cache_resource``, which any browser can empty).
    """
    return shared_pool(session_alive=streamlit_session_alive)


def release_kernel(lease: KernelLease) -> None:
    """Streamlit's session-end hook: the session's kernel and work folder go with it, once it is gone.

    Streamlit also calls it for every session when a browser sends ``clear_cache``: live sessions keep theirs.
    """
    release_when_gone(lease.pool)


@st.cache_resource(scope="session", on_release=release_kernel, show_spinner=False)
def kernel_lease(_pool: KernelPool, session_id: str) -> KernelLease:
    """This session's claim on the pool, released by Streamlit when the session ends."""
    return _pool.lease(session_id)


def show_execution(execution: ExecutionRecord) -> None:
    """Every output of a run in order: text, tables, images; errors in red."""
    for output in execution.outputs:
        if output.kind == "error":
            st.error(f"```\n{output.text}\n```")
        elif output.png is not None:
            show_image(output.png, "content")
        elif output.html is not None and "dataframe" in output.html:
            # The HTML comes from untrusted code: an iframe with no scripts, no origin, no forms, no navigation.
            st.markdown(sandboxed_html(TABLE_STYLE + output.html), unsafe_allow_html=True)
        elif output.text:
            st.code(output.text, language=None)
            if output.name == "stderr":
                st.caption("standard error")
    if execution.note:
        st.warning(execution.note)
    count = f"In [{execution.execution_count}] · " if execution.execution_count else ""
    st.caption(f"{count}{execution.duration:.2f} s" + ("" if execution.outputs else " · no output"))


def show_cell(record: CodeRun) -> None:
    """One of the user's own cells: its outputs, or why it could not run."""
    outputs = record.outputs()
    if outputs is None:
        st.error(record.error)
    else:
        show_execution(outputs)


def show_message(message: Message) -> None:
    """One message of the conversation; an observation shows its run in full (kept in the message)."""
    if message.role is Role.OBSERVATION:
        with st.chat_message("interpreter", avatar=":material/terminal:"):
            if message.execution is not None:
                show_execution(message.execution)
            else:
                st.code(message.content, language=None)
                for image in message.images:
                    show_image(image, "content")
        return
    with st.chat_message(message.role.value):
        prose, code = split_code(message) if message.role is Role.ASSISTANT else (message.content, None)
        if prose:
            show_markdown(prose)
        if code is not None:
            st.code(code, language="python")
        if not prose and code is None:
            st.markdown("*(no text)*")
        if message.role is Role.ASSISTANT:
            show_sources(message)
            stats_caption(message)


def place_attached(session: CodeSession) -> None:
    """Put the files just attached into the work folder, so that the model's code can open them."""
    try:
        session.place_attached()
    except USER_ERRORS as exc:
        show_error(exc)


def show_turn(turn: CodeTurn) -> None:
    """Render a turn's events as they come: streamed text, runs with a timer, notices."""
    slot, text = st.empty(), ""
    for event in turn:
        if isinstance(event, TextDelta):
            text += event.text
            with slot.container(), st.chat_message("assistant"):
                show_markdown(text)
        elif isinstance(event, CodeRunning):
            slot.caption(f"Running the code… {event.seconds:.0f} s (Stop or Interrupt ends it)")
            show_status()
        elif isinstance(event, MessageDone):
            with slot.container():
                show_message(event.message)
            slot, text = st.empty(), ""
            show_status()
        elif isinstance(event, Waiting):
            slot.caption(event.text)  # the first text takes its place
        elif isinstance(event, Notice):
            turn_notice(event.level, event.text)


def show_status() -> None:
    status = session.status()
    status_slot.markdown(f"**{status.label}**")


def download_button(session: CodeSession, info: FileInfo, label: str) -> None:
    """One file's download button (its bytes read only when clicked)."""
    st.download_button(
        f"{label} · {info.size:,} bytes",
        functools.partial(session.read_file, info.name),
        file_name=info.name.rsplit("/", 1)[-1],
        key=f"code_download_{info.name}",
        on_click="ignore",
        use_container_width=True,
    )


def file_list(session: CodeSession, files: list[FileInfo], prefix: str = "") -> None:
    """The first files as buttons; the rest counted (the zip holds them all)."""
    for info in files[:FILES_SHOWN]:
        download_button(session, info, info.name.removeprefix(prefix))
    if len(files) > FILES_SHOWN:
        st.caption(f"… and {len(files) - FILES_SHOWN:,} more: download all as a zip above.")


def files_panel(session: CodeSession) -> None:
    """The work folder: a zip of everything, top-level files, then one collapsed group per folder."""
    files = session.files()
    if not files:
        st.sidebar.caption("No files yet. Uploads and files your code writes appear here.")
        return
    total = sum(info.size for info in files)
    st.sidebar.download_button(
        f"Download all as zip ({len(files):,} file{'s' if len(files) != 1 else ''}, {total:,} bytes)",
        session.zip_files,
        file_name="workbench-files.zip",
        mime="application/zip",
        key="code_download_zip",
        on_click="ignore",
        icon=":material/folder_zip:",
        use_container_width=True,
    )
    top = [info for info in files if "/" not in info.name]
    folders: dict[str, list[FileInfo]] = {}
    for info in files:
        if "/" in info.name:
            folders.setdefault(info.name.split("/", 1)[0], []).append(info)
    with st.sidebar.container():
        file_list(session, top)
    for folder, inside in folders.items():
        with st.sidebar.expander(f"{folder}/ · {len(inside):,} files", icon=":material/folder:"):
            file_list(session, inside, prefix=f"{folder}/")


def fingerprint(session: CodeSession) -> tuple[object, ...]:
    """What the page shows that can change behind its back (a run ending, a stopped turn recorded)."""
    return (len(session.runs), len(session.messages), session.busy, session.active is None)


def after_action(note: str) -> None:
    """Keep a sentence for this rerun's sidebar (an action's outcome)."""
    st.session_state["code_action_note"] = note


def interrupt_clicked() -> None:
    """Interrupt, then wait (briefly) for the run to end, so this same rerun shows it and the status."""
    session: CodeSession | None = st.session_state.get("code_session")
    if session is None:
        return
    seen = st.session_state.get("code_seen", (0,))
    try:
        interrupted = session.interrupt()
    except USER_ERRORS as exc:  # a Kernel Gateway that cannot be reached
        st.session_state["code_action_error"] = str(exc)
        return
    if interrupted:
        session.wait_idle(INTERRUPT_WAIT_S)
        after_action("Interrupted the running code.")
    elif len(session.runs) != seen[0]:
        after_action("Interrupted the running code.")  # the click's own rerun had already stopped it
    else:
        after_action("Nothing is running now.")


def restart_clicked() -> None:
    """Restart the kernel, then wait for the run it stopped to be recorded (same rerun)."""
    session: CodeSession | None = st.session_state.get("code_session")
    if session is None:
        return
    try:
        note = session.restart()
    except USER_ERRORS as exc:
        st.session_state["code_action_error"] = str(exc)
        return
    session.wait_idle(INTERRUPT_WAIT_S)
    after_action(note)


RERUNS_CODE = "Regenerate runs this answer's code again, in the kernel as it is now."

login_gate()  # first thing: nothing of the page before the password (pages/_login.py)
st.title("Code interpreter")
model = current_model()
try:
    pool = kernel_pool()
except USER_ERRORS as exc:
    st.error(str(exc))
    st.stop()
session_id = session_object("code_session_id", streamlit_session_id)
kernel_lease(pool, session_id)
session = session_object("code_session", lambda: CodeSession(model, pool=pool, session_id=session_id))
if session.model is not model:
    session.model = model
session.stop()  # a turn left running by a stopped script ends here, what it wrote and ran kept
history = conversation_sidebar(Mode.CODE, session, on_reopen=lambda _opened: restart_for(session))
documents = attached_documents("code", history, session.history.id)  # saved with the conversation
session.attached = documents  # put into the work folder, named to the model
session.documents = source_picker("code", documents)  # the attached files, or a knowledge base
documents_sidebar("code", documents)
pending = bool(st.session_state.get("code_input")) or bool(st.session_state.get("code_run"))
rerun_when_behind("code_seen", lambda: fingerprint(session), live=pending or session.busy)

# --- sidebar: settings, kernel, files -------------------------------------------------------------
session.settings = sampling_controls("code", model.default_settings(), session.settings)
with st.sidebar.expander("Code settings", expanded=False):
    session.code.max_rounds = int(
        st.number_input("Max code runs per message", 1, 20, 5, key="code_max_rounds")
    )
    session.code.timeout = float(st.number_input("Time limit per run (s)", 1, 600, 30, key="code_timeout"))
    session.code.force_code = st.checkbox(
        "Force code in the first reply",
        True,
        key="code_force",
        help="Start each reply with ```python so even a small model writes code.",
    )
    session.code.worked_example = st.checkbox("Show the model a worked example", True, key="code_example")
    session.system_prompt = st.text_area("System prompt", session.system_prompt, key="code_system")

status_slot = st.sidebar.empty()
show_status()
status = session.status()
if status.gateway:
    st.sidebar.info(
        f"Code runs on the Kernel Gateway at {status.gateway}: this machine's sandbox limits "
        "(bubblewrap, memory, processes, work folder cap) do not apply there; the gateway isolates the "
        "kernels (Enterprise Gateway: a pod per kernel). Time-out and Interrupt still hold."
    )
elif not status.sandboxed:
    st.sidebar.warning(
        f"Code runs NOT sandboxed ({status.reason}): it can read and change this machine's "
        "files and use the network. Install bubblewrap with user namespaces enabled to sandbox it."
    )
left, right = st.sidebar.columns(2)
left.button("Interrupt", use_container_width=True, key="code_interrupt", on_click=interrupt_clicked)
right.button("Restart", use_container_width=True, key="code_restart", on_click=restart_clicked)
if note := st.session_state.pop("code_action_note", None):
    st.sidebar.info(note)
if error := st.session_state.pop("code_action_error", None):
    st.sidebar.error(error)
if st.sidebar.button("Clear chat", use_container_width=True, key="code_clear"):
    session.clear()

for note in session.pop_notices():
    st.warning(note)

# --- main: the model's conversation and the user's own cells ----------------------------------------
chat_tab, cells_tab = st.tabs(["Chat with the model", "Your cells"])
with cells_tab:
    cell = st.text_area(
        "Python",
        key="code_cell",
        height=160,
        placeholder="import pandas as pd\npd.DataFrame({'x': [1, 2, 3]})",
    )
    if st.button("Run", type="primary", key="code_run"):
        try:
            background = session.start_user_cell(cell)
        except USER_ERRORS as exc:
            show_error(exc)
        else:
            show_status()
            timer = st.empty()
            for seconds in background.watch():  # a stopped script (Interrupt, any click) interrupts the cell
                timer.caption(f"Running… {seconds:.0f} s")
            timer.empty()
            show_status()
    for record in reversed([r for r in session.runs if r.source == "user"]):
        with st.container(border=True):
            st.code(record.code, language="python")
            show_cell(record)


def start(action: BranchAction) -> CodeTurn:
    """Run the Edit or Regenerate a click asked for (a new sibling; the old stays a page away)."""
    if action.kind == "edit":
        return session.edit(action.message_id, action.text)
    return session.regenerate(action.message_id)


def show_user(message: Message) -> None:
    show_message_images(message)
    show_markdown(message.content or "*(no text)*")


def rerun_branch_clicked() -> None:
    try:
        report = session.rerun_branch()
    except USER_ERRORS as exc:
        st.session_state["code_action_error"] = str(exc)
    else:
        st.session_state["code_rerun_report"] = report.summary()


with chat_tab:
    reopened_code_notice(history, session.run_user_cell, session)
    started = run_action(take_action("code"), start)  # before the history is drawn
    branch_error()
    if (kernel_note := session.kernel_branch_note()) is not None:
        st.warning(kernel_note, icon=":material/account_tree:")
        st.button("Re-run this branch's cells", key="code_branch_rerun", on_click=rerun_branch_clicked)
    if report_line := st.session_state.pop("code_rerun_report", None):
        st.success(report_line + " See them under “Your cells”.")
    conversation = st.container()  # above the input, which a tab shows inline
    given = st.chat_input(
        "Ask for something to compute, analyse or plot, or attach documents and images",
        key="code_input",
        submit_mode="stop",
        accept_file="multiple",
        file_type=FILE_TYPES + IMAGE_TYPES,
    )
    with conversation:
        thread = session.messages
        answer_start: Message | None = None  # the first message of the answer being drawn
        for index, message in enumerate(thread):
            if message.role is Role.USER:
                with st.chat_message("user"):
                    user_message(session, history, message, "code", show_user)
                answer_start = None
                continue
            show_message(message)
            answer_start = answer_start or message
            last_of_answer = index + 1 == len(thread) or thread[index + 1].role is Role.USER
            if last_of_answer and not session.busy and answer_start.role is Role.ASSISTANT:
                answer_controls(session, history, answer_start, "code", note=RERUNS_CODE)
        turn: CodeTurn | None = started if isinstance(started, CodeTurn) else None
        attach_sent(given, documents)
        if given is not None and given.files:
            place_attached(session)
        prompt = message_box_prompt(given, "code", sending=turn is not None)
        if prompt is not None:
            turn = send_with_images("code", prompt, session.send) or turn
        if turn is not None:
            try:
                show_turn(turn)
            except USER_ERRORS as exc:
                keep_if_taken_back(
                    session.history, turn.asked, exc, "code"
                )  # nothing answered: the text waits
                turn_notice("error", str(exc))
            finally:
                turn.close()  # also runs when the script is stopped: the model halts, running code is interrupted
            show_status()
            end_turn()
        kept_notices()

# Files last, so that files written by the code that just ran are listed.
st.sidebar.markdown("**Files**")
saved: set[str] = session_object("code_saved_uploads", set)
for upload in (
    st.sidebar.file_uploader("Upload into the work folder", accept_multiple_files=True, key="code_upload")
    or []
):
    if upload.file_id not in saved:
        try:
            session.upload(upload.name, upload.getvalue())
            saved.add(upload.file_id)
        except USER_ERRORS as exc:
            st.sidebar.error(str(exc))
files_panel(session)
st.session_state["code_seen"] = fingerprint(session)  # what this run drew (see rerun_when_behind)
