"""The code-interpreter loop with a scripted model, on a fake kernel (fast) and on the real sandboxed one."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kernel import Execution, ExecutionError, GatewayConfig, KernelSession, Output
from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.dialects import ChatGLM3Dialect, Dialect
from workbench.errors import EmptyPromptError, KernelError, KernelLimitError, PromptTooLongError
from workbench.messages import Message, Role, transcript_from_json, transcript_to_json
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import find_code_block, mark_code_turn, split_code
from workbench.modes.code_runs import CodeRunning
from workbench.modes.code_workspace import Workspace
from workbench.modes.events import MessageDone, Notice, TextDelta


# --- fakes ----------------------------------------------------------------------------------------
def tiny_png(width: int = 4, height: int = 3) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


class FakeKernel:
    """Runs code with ``exec`` in one namespace (trusted test code only), like a kernel keeps state.

    ``sleep`` in the code waits for an interrupt; ``DIE`` reports a death and restart; ``PLOT`` shows an image.
    """

    sandboxed = True
    sandbox_reason = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.alive = True
        self.codes: list[str] = []
        self.namespace: dict[str, Any] = {}
        self.interrupted = threading.Event()
        self.restarts = 0

    def execute(self, code: str, timeout: float = 30.0) -> Execution:
        self.codes.append(code)
        self.interrupted.clear()
        execution = Execution(code=code)
        if "sleep" in code:
            stopped = self.interrupted.wait(timeout)
            execution.timed_out = not stopped
            execution.error = ExecutionError("KeyboardInterrupt", "", "KeyboardInterrupt")
            execution.outputs.append(Output("error", {"text/plain": "KeyboardInterrupt"}))
            if execution.timed_out:
                execution.note = f"The run was interrupted because it exceeded the {timeout:g} s time limit."
            return execution
        if "DIE" in code:
            self.namespace.clear()
            execution.restarted = True
            execution.note = "The kernel crashed (SIGSEGV) and was restarted, so its variables are lost."
            return execution
        if "PLOT" in code:
            png = tiny_png()
            execution.outputs.append(Output("display", {"image/png": png, "text/plain": "<Figure>"}))
            execution.images.append(png)
            return execution
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(code, self.namespace)
        except Exception as exc:
            execution.error = ExecutionError(type(exc).__name__, str(exc), f"{type(exc).__name__}: {exc}")
        execution.stdout = buffer.getvalue()
        if execution.stdout:
            execution.outputs.insert(0, Output("stream", {"text/plain": execution.stdout}, "stdout"))
        if execution.error:
            execution.outputs.append(Output("error", {"text/plain": execution.error.traceback}))
        return execution

    def interrupt(self) -> None:
        self.interrupted.set()

    def restart(self) -> None:
        self.restarts += 1
        self.namespace.clear()


class FakePool:
    """Hands out one FakeKernel per session id; ``replace`` simulates an idle kernel reaped and restarted."""

    def __init__(self, workdir: Path, max_kernels: int = 2) -> None:
        self.workdir = workdir
        self.max_kernels = max_kernels
        self.kernels: dict[str, FakeKernel] = {}
        self.released: list[str] = []

    def get(self, session_id: str) -> FakeKernel:
        if session_id not in self.kernels:
            if len(self.kernels) >= self.max_kernels:
                raise KernelLimitError(f"All {self.max_kernels} kernels are in use by other sessions.")
            folder = self.workdir / session_id
            folder.mkdir(exist_ok=True)
            self.kernels[session_id] = FakeKernel(folder)
        return self.kernels[session_id]

    def release(self, session_id: str) -> None:
        self.released.append(session_id)
        self.kernels.pop(session_id, None)


def make_session(
    kernel: Any, *replies: str, delay_s: float = 0.0, dialect: Dialect | None = None, **code: Any
) -> tuple[CodeSession, ScriptedBackend]:
    backend = ScriptedBackend(*replies, delay_s=delay_s, chunk_chars=4)
    model = ChatModel(backend, dialect=dialect or PlainDialect())
    settings = CodeSettings(**{"worked_example": False, **code})
    return CodeSession(model, kernel, code_settings=settings), backend


def roles(session: CodeSession) -> list[str]:
    return [m.role.value for m in session.messages]


def drain(turn: Any) -> list[Any]:
    return [event for event in turn if not isinstance(event, CodeRunning)]


@pytest.fixture
def fake_kernel(tmp_path: Path) -> FakeKernel:
    return FakeKernel(tmp_path)


# --- the loop, on the fake kernel -----------------------------------------------------------------
def test_forced_code_runs_and_the_answer_streams(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(fake_kernel, "print(2**20)\n```", "2**20 is 1048576.")
    events = drain(session.send("What is 2**20?"))

    assert backend.prompts[0].endswith("assistant:```python\n")  # the forced opening fence
    assert fake_kernel.codes == ["print(2**20)"]
    assert roles(session) == ["user", "assistant", "observation", "assistant"]
    code_turn, observation, answer = session.messages[1:]
    assert code_turn.interpreter is True
    assert split_code(code_turn) == ("", "print(2**20)")
    assert observation.name == "interpreter" and observation.content == "1048576"
    assert not observation.error and observation.execution is not None
    assert [(o.kind, o.text) for o in observation.execution.outputs] == [("stream", "1048576\n")]
    assert answer.content == "2**20 is 1048576." and not answer.interpreter
    assert "observation: 1048576" in backend.prompts[1]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.startswith("```python\nprint(2**20)\n```") and text.endswith("1048576.")
    assert [e.message.role.value for e in events if isinstance(e, MessageDone)] == [
        "assistant",
        "observation",
        "assistant",
    ]
    assert session.runs[0].source == "model" and not session.busy and session.active is None


def test_unforced_reply_is_cut_after_the_block_and_the_guessed_output_dropped(
    fake_kernel: FakeKernel,
) -> None:
    reply = (
        "Let me compute.\n```python\nx = 6 * 7\nprint(x)\n```\nOutput: 41 (a guess the model should not make)"
    )
    session, backend = make_session(fake_kernel, reply, "It is 42.", force_code=False)
    events = drain(session.send("6 times 7?"))

    assert not backend.prompts[0].endswith("```python\n")
    code_turn = session.messages[1]
    assert code_turn.content == "Let me compute.\n```python\nx = 6 * 7\nprint(x)\n```"
    assert split_code(code_turn) == ("Let me compute.", "x = 6 * 7\nprint(x)")
    assert session.messages[2].content == "42"
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "guess" not in streamed


def test_a_plain_answer_runs_nothing(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "Hello there.", force_code=False)
    drain(session.send("Hi"))
    assert roles(session) == ["user", "assistant"] and fake_kernel.codes == []


def test_an_exception_becomes_an_error_observation_and_the_model_sees_it(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(fake_kernel, "1/0\n```", "Dividing by zero fails.")
    drain(session.send("Divide 1 by 0"))
    observation = session.messages[2]
    assert observation.error and "ZeroDivisionError: division by zero" in observation.content
    assert "ZeroDivisionError" in backend.prompts[1]


def test_rounds_are_capped_with_a_notice_and_a_not_run_observation(fake_kernel: FakeKernel) -> None:
    again = "```python\nprint('again')\n```"
    session, _ = make_session(fake_kernel, "print('again')\n```", again, again, max_rounds=2, force_code=True)
    events = drain(session.send("Loop forever"))

    assert len(fake_kernel.codes) == 2
    assert roles(session) == [
        "user",
        "assistant",
        "observation",
        "assistant",
        "observation",
        "assistant",
        "observation",
    ]
    assert session.messages[-1].content == "[not run: the limit of 2 code runs for one message was reached]"
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "not run" in notices[0].text and "Max code runs" in notices[0].text


def test_a_timeout_is_told_to_the_model_and_the_user(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(
        fake_kernel, "import time; time.sleep(100)\n```", "It took too long.", timeout=0.2
    )
    events = drain(session.send("Sleep"))
    observation = session.messages[2]
    assert observation.error and observation.execution is not None and observation.execution.timed_out
    assert "exceeded the 0.2 s time limit" in observation.content
    assert "exceeded the 0.2 s time limit" in backend.prompts[1]
    assert any(isinstance(e, Notice) and "time limit" in e.text for e in events)


def test_a_death_says_the_state_was_lost(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "DIE\n```", "The kernel crashed.")
    events = drain(session.send("Crash"))
    observation = session.messages[2]
    assert observation.execution is not None and observation.execution.restarted
    assert "variables are lost" in observation.content
    assert any(isinstance(e, Notice) and "variables are lost" in e.text for e in events)


def test_images_go_into_the_observation_as_placeholders_and_bytes(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "PLOT\n```", "Here is the plot.")
    drain(session.send("Plot"))
    observation = session.messages[2]
    assert observation.content == "[image 1: 4x3]"
    assert observation.images == [tiny_png()]
    assert observation.to_dict(include_images=False)["image_count"] == 1


def test_a_saved_code_conversation_keeps_every_output_and_every_change_is_announced(
    fake_kernel: FakeKernel,
) -> None:
    session, _ = make_session(fake_kernel, "PLOT\n```", "A plot.")
    changes: list[Any] = []
    session.history.subscribe(changes.append)
    drain(session.send("Plot something"))
    assert "Drafted" in [type(c).__name__ for c in changes]  # the answers as they stream (change nothing)
    assert [type(c).__name__ for c in changes if type(c).__name__ != "Drafted"] == [
        "Appended",
        "TitleChanged",
        "Appended",
        "Appended",
        "Appended",
    ]
    assert session.history.mode.value == "code" and session.history.title == "Plot something"
    reloaded = transcript_from_json(transcript_to_json(session.messages))
    execution = reloaded[2].execution
    assert execution is not None and execution.images == [tiny_png()]
    assert [o.kind for o in execution.outputs] == ["display"] and reloaded == session.messages


def test_user_cells_share_state_with_the_model_but_stay_out_of_the_conversation(
    fake_kernel: FakeKernel,
) -> None:
    session, backend = make_session(fake_kernel, "print(x + 1)\n```", "x + 1 is 42.")
    cell = session.run_user_cell("x = 41")
    assert cell.ok
    drain(session.send("What is x + 1?"))
    assert session.messages[2].content == "42"
    assert "x = 41" not in backend.prompts[0]
    assert [(run.source, run.code) for run in session.runs] == [("user", "x = 41"), ("model", "print(x + 1)")]


def test_uploaded_file_names_are_told_to_the_model(fake_kernel: FakeKernel) -> None:
    code = f"print(open('{fake_kernel.workdir}/data.csv').read())\n```"  # the fake runs in the test's folder
    session, backend = make_session(fake_kernel, code, "It has a and b.")
    session.upload("data.csv", b"a,b\n1,2\n")
    assert [f.name for f in session.files()] == ["data.csv"]
    assert session.read_file("data.csv") == b"a,b\n1,2\n"
    drain(session.send("What columns does data.csv have?"))
    assert "Files in the current folder (open them by name): data.csv." in backend.prompts[0]
    assert session.messages[2].content == "a,b\n1,2"


def test_a_restart_is_told_to_the_model_once(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(fake_kernel, "Nothing to run.", "Still nothing.", force_code=False)
    session.run_user_cell("y = 1")
    message = session.restart()
    assert "restarted" in message and "variables" in message and fake_kernel.restarts == 1
    drain(session.send("Is y defined?"))
    assert "The user restarted the kernel" in backend.prompts[0]
    drain(session.send("And now?"))
    assert "restarted" not in backend.prompts[1]


def test_closing_a_turn_while_code_runs_interrupts_it_and_records_the_run(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "import time; time.sleep(100)\n```", "never")
    turn = session.send("Sleep")
    for event in turn:
        if isinstance(event, CodeRunning):
            break  # the page's script stopped here
    turn.close()
    assert fake_kernel.interrupted.is_set()
    assert roles(session) == ["user", "assistant", "observation"]
    assert "KeyboardInterrupt" in session.messages[2].content
    assert not session.busy and session.active is None


def test_stop_during_generation_keeps_the_partial_reply(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "A long answer " * 50, delay_s=0.01, force_code=False)
    turn = session.send("Talk")
    for event in turn:
        if isinstance(event, TextDelta) and len(event.text) > 0:
            turn.stop()
    reply = session.messages[-1]
    assert reply.stopped is True and reply.content.startswith("A lo")
    assert len(reply.content) < len("A long answer " * 50)
    assert fake_kernel.codes == []


def test_send_refuses_blank_text_and_a_busy_kernel(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "unused")
    with pytest.raises(EmptyPromptError, match="empty"):
        session.send("  ")
    run = session.start_user_cell("import time; time.sleep(100)")
    with pytest.raises(KernelError, match="still running"):
        session.send("Hello")
    with pytest.raises(KernelError, match="busy"):
        session.run_user_cell("1")
    assert session.status().state == "busy"
    assert session.interrupt() is True
    assert run.result(timeout=5).execution is not None
    assert session.status().state == "idle" and session.messages == []


def test_a_message_too_long_is_taken_back_as_in_chat_and_tool_modes(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "Plain answer.", force_code=False)
    list(session.send("short"))
    with pytest.raises(PromptTooLongError):
        drain(session.send("word " * 5000))  # more than the scripted model's context
    assert [m.content for m in session.messages] == ["short", "Plain answer."]  # nothing answered it
    assert not session.busy and session.active is None and fake_kernel.codes == []


def test_the_code_page_keeps_no_conversation_for_a_refused_first_message(fake_kernel: FakeKernel) -> None:
    from workbench.conversation import Mode
    from workbench.store import ConversationStore
    from workbench.store.page_history import PageHistory

    session, _ = make_session(fake_kernel, "unused")
    with ConversationStore.open(f"sqlite:///{fake_kernel.workdir / 'conversations.sqlite3'}") as store:
        PageHistory(store, Mode.CODE).follow(session, None)  # as the Code page opens a new conversation
        with pytest.raises(PromptTooLongError):
            drain(session.send("word " * 5000))
        assert store.list() == [] and store.list(deleted=True) == [] and session.history.title == ""


def test_status_label_says_sandboxed_or_not(fake_kernel: FakeKernel) -> None:
    session, _ = make_session(fake_kernel, "unused")
    assert session.status().label == "Kernel: idle · sandboxed"
    fake_kernel.sandboxed = False
    fake_kernel.sandbox_reason = "no user namespaces"
    status = session.status()
    assert status.label == "Kernel: idle · NOT sandboxed" and status.reason == "no user namespaces"
    fake_kernel.alive = False
    assert session.status().state == "dead"


def test_status_names_the_gateway_before_and_after_the_kernel_starts(tmp_path: Path) -> None:
    pool = FakePool(tmp_path)
    pool.gateway = GatewayConfig("http://10.0.0.5:8888", token="secret")  # type: ignore[attr-defined]
    workspace = Workspace(pool=pool, session_id="s")
    status = workspace.status()
    assert status.label == "Kernel: not started · on gateway http://10.0.0.5:8888" and not status.sandboxed
    kernel = pool.get("s")
    kernel.sandboxed = False
    kernel.gateway_url = "http://10.0.0.5:8888"  # type: ignore[attr-defined]
    workspace.kernel  # noqa: B018 (starts the session's kernel)
    assert workspace.status().label == "Kernel: idle · on gateway http://10.0.0.5:8888"
    assert "secret" not in repr(workspace.status())


def test_chatglm3_code_turns_use_its_interpreter_format(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(
        fake_kernel, "print(6 * 7)\n```", "The answer is 42.", dialect=ChatGLM3Dialect()
    )
    drain(session.send("What is 6*7?"))
    assert backend.prompts[0].endswith("<|assistant|>interpreter\n```python\n")
    code_turn = session.messages[1]
    assert (code_turn.interpreter, code_turn.code) == (True, "print(6 * 7)")
    assert (
        "<|assistant|>interpreter\n```python\nprint(6 * 7)\n```<|observation|>\n```result\n42\n```"
        in (backend.prompts[1])
    )


def test_the_worked_example_precedes_the_conversation(fake_kernel: FakeKernel) -> None:
    session, backend = make_session(fake_kernel, "print(1)\n```", "1.", worked_example=True)
    drain(session.send("Print one"))
    assert (
        "user: What is 3**4?\nassistant: ```python\nprint(3**4)\n```\nobservation: 81\n" in backend.prompts[0]
    )
    assert roles(session) == ["user", "assistant", "observation", "assistant"]


# --- kernels from a pool ----------------------------------------------------------------------------
def test_pool_sessions_get_their_own_kernel_and_a_clear_limit(tmp_path: Path) -> None:
    pool = FakePool(tmp_path, max_kernels=2)
    model = ChatModel(ScriptedBackend(), dialect=PlainDialect())
    first, second, third = (CodeSession(model, pool=pool, session_id=sid) for sid in ("a", "b", "c"))
    assert first.status().state == "not started" and not first.kernel_started
    first.run_user_cell("secret = 1")
    second.run_user_cell("x = 2")
    with pytest.raises(NameError):
        exec("secret", pool.kernels["b"].namespace)
    with pytest.raises(KernelLimitError, match="in use"):
        third.run_user_cell("1")
    first.close()
    assert pool.released == ["a"]
    assert third.run_user_cell("print('now there is room')").stdout == "now there is room\n"


def test_a_kernel_replaced_by_the_pool_is_reported(tmp_path: Path) -> None:
    pool = FakePool(tmp_path)
    model = ChatModel(ScriptedBackend("Nothing.", "Nothing.", chunk_chars=4), dialect=PlainDialect())
    session = CodeSession(model, pool=pool, session_id="a", code_settings=CodeSettings(force_code=False))
    session.run_user_cell("z = 1")
    pool.kernels.pop("a")  # reaped after the idle limit
    events = drain(session.send("Is z there?"))
    assert any(isinstance(e, Notice) and "idle too long" in e.text for e in events)
    assert "idle too long" in ScriptedBackend.of(model).prompts[0]


def test_a_session_without_kernel_or_pool_is_refused() -> None:
    model = ChatModel(ScriptedBackend(), dialect=PlainDialect())
    with pytest.raises(KernelError, match="kernel or a kernel pool"):
        CodeSession(model)


# --- reading code blocks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code", "closed"),
    [
        ("```python\nprint(1)\n```", "print(1)", True),
        ("Sure:\n```py\nx = 1\n```\nmore", "x = 1", True),
        ("```Python3 \nprint(2)", "print(2)", False),
        ("```\nnot python\n```", None, None),
        ("no code at all", None, None),
    ],
)
def test_find_code_block(text: str, code: str | None, closed: bool | None) -> None:
    block = find_code_block(text)
    assert (block.code if block else None) == code
    assert (block.closed if block else None) == closed


def test_mark_code_turn_closes_an_unclosed_block_and_drops_an_empty_one() -> None:
    unclosed = mark_code_turn(Message(Role.ASSISTANT, "```python\nprint(1)"))
    assert unclosed.content == "```python\nprint(1)\n```" and unclosed.interpreter
    empty = mark_code_turn(Message(Role.ASSISTANT, "Nothing to run ```python\n```"))
    assert empty.content == "Nothing to run" and not empty.interpreter


# --- the real sandboxed kernel, scripted model ------------------------------------------------------
@pytest.fixture(scope="module")
def real_kernel() -> Any:
    with KernelSession(sandbox=True, interrupt_grace=1.0) as session:
        yield session


@pytest.mark.kernel
def test_real_kernel_computes_2_to_the_20(real_kernel: KernelSession) -> None:
    """The code turn of the README, exact on purpose: the embedded model's own code varies with the CPU."""
    session, backend = make_session(real_kernel, "print(2**20)\n```", "2**20 is 1048576.")
    drain(session.send("What is 2**20?"))
    assert roles(session) == ["user", "assistant", "observation", "assistant"]
    observation = session.messages[2]
    assert observation.name == "interpreter" and observation.content == "1048576" and not observation.error
    assert observation.execution is not None
    assert [(o.kind, o.text) for o in observation.execution.outputs] == [("stream", "1048576\n")]
    [run] = session.runs
    assert run.code == "print(2**20)" and run.execution is not None and run.execution.ok
    assert "observation: 1048576" in backend.prompts[1]


@pytest.mark.kernel
def test_real_kernel_plot_and_shared_state(real_kernel: KernelSession) -> None:
    plot = "import matplotlib.pyplot as plt\nplt.plot(values)\nplt.title('t')\n```"
    session, backend = make_session(real_kernel, plot, "A line plot.")
    session.run_user_cell("values = [1, 4, 9]")
    drain(session.send("Plot values"))
    observation = session.messages[2]
    assert len(observation.images) == 1 and observation.images[0].startswith(b"\x89PNG")
    assert "[image 1: " in observation.content and "[image 1: " in backend.prompts[1]


@pytest.mark.kernel
def test_real_kernel_timeout_and_a_dead_kernel_are_reported(real_kernel: KernelSession) -> None:
    session, _ = make_session(
        real_kernel,
        "while True:\n    pass\n```",
        "Too slow.",
        "import os; os._exit(3)\n```",
        "It died.",
        timeout=1.0,
    )
    events = drain(session.send("Loop"))
    timed_out = session.messages[2].execution
    assert timed_out is not None and timed_out.timed_out
    assert any(isinstance(e, Notice) and "1 s time limit" in e.text for e in events)
    events = drain(session.send("Exit"))
    observation = session.messages[-2]
    assert observation.execution is not None and observation.execution.restarted
    assert "lost" in observation.content
    assert any(isinstance(e, Notice) and "restarted" in e.text for e in events)
    assert session.run_user_cell("6 * 7").result == "42"


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_real_kernel_outputs_stored_per_conversation_are_capped(real_kernel: KernelSession) -> None:
    """Issue 24, disk fill: runs showing 4 x 12 MiB images each must not grow a conversation without bound."""
    show = (
        "import io, numpy as np\nfrom PIL import Image as I\nfrom IPython.display import Image, display\n"
        "b = io.BytesIO()\nI.fromarray(np.random.randint(0, 256, (2048, 2048, 3), dtype=np.uint8)).save(b, 'PNG')\n"
        "for _ in range(4):\n    display(Image(data=b.getvalue(), format='png'))\nb = None\n```"
    )
    session, _ = make_session(real_kernel, show, "Four images.", show, "Four more.", timeout=60)
    drain(session.send("Show images"))
    drain(session.send("Again"))
    stored = sum(len(m.to_dict()["execution"]["outputs"].__repr__()) for m in session.messages if m.execution)
    stored += sum(len(image) for m in session.messages for image in m.images)
    assert stored <= 64 * 1024 * 1024 * 1.4  # the cap, counted in base64 as the store writes images
    last = session.messages[-2]
    assert last.execution is not None and "reached their cap of 64 MiB" in last.execution.note
    assert "reached their cap" in last.content and not last.images


def test_an_import_with_image_bombs_keeps_a_note_instead() -> None:
    """Issue 24: an imported conversation holding a junk PNG or a bomb must open without error."""
    import base64
    import json

    from workbench.store.transcripts import parse_import

    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    bomb = base64.b64encode(buffer.getvalue()).decode()
    junk = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"junk" * 100).decode()
    good = base64.b64encode(tiny_png()).decode()
    observation = {
        "role": "observation",
        "name": "interpreter",
        "content": "[image 1]",
        "images": [bomb, good, junk],
        "execution": {"outputs": [{"kind": "display", "png": junk}, {"kind": "display", "png": good}]},
    }
    data = json.dumps({"mode": "code", "messages": [{"role": "user", "content": "Plot"}, observation]})
    message = parse_import(data)[0].messages[1]
    assert message.images == [tiny_png()]
    assert message.content.count("[image dropped:") == 2
    assert message.execution is not None
    assert [o.png is None for o in message.execution.outputs] == [True, False]
    assert "image dropped" in message.execution.outputs[0].text


def test_kernel_html_is_framed_without_scripts_origin_or_fetches() -> None:
    from workbench.modes.code_format import sandboxed_html

    hostile = '<table class="dataframe"><tr><td>1</td></tr></table><script>alert(1)</script>"><img src=x>'
    frame = sandboxed_html(hostile)
    assert frame.startswith('<iframe sandbox="" ') and frame.count("<iframe") == 1
    assert "<script>" not in frame and "&lt;script&gt;" in frame  # inert inside srcdoc
    assert "default-src &#x27;none&#x27;" in frame


def test_switching_to_a_branch_the_kernel_did_not_run_says_so_and_rerun_rebuilds(fake_kernel: FakeKernel) -> None:
    session, _backend = make_session(fake_kernel, "x = 1\n```", "Done.", "x = 2\n```", "Done again.")
    drain(session.send("Set x."))
    first_run = session.messages[2]
    assert session.kernel_message_id == first_run.id and session.kernel_branch_note() is None
    asked = session.messages[0]
    drain(session.edit(asked.id, "Set x, differently."))
    assert fake_kernel.codes == ["x = 1", "x = 2"] and session.kernel_branch_note() is None
    session.history.switch(asked.id)  # back to the first branch: the kernel holds the second's state
    note = session.kernel_branch_note()
    assert note is not None and "another branch" in note and "Re-run this branch's cells" in note
    report = session.rerun_branch()
    assert report.ran == 1 and fake_kernel.codes[-1] == "x = 1" and session.kernel_branch_note() is None
