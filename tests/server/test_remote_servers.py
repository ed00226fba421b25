"""The three modes on real OpenAI-compatible servers that are not the workbench's own ``serve``.

Each server is installed and started by the fixtures of :mod:`tests.server.real_servers`:
llama-cpp-python's server, and the workbench's server playing the deviations of others (``tool_choice``
ignored, ``json_schema`` and null content refused). On each: a chat, a required tool call that gets its
result, a forced code turn that runs in the kernel, Stop, and the server killed in the middle of an
answer. The 135M model's free text is never asserted: only what the loop and the server must do.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from kernel import KernelSession
from tests.server.real_servers import imitating_server, llama_cpp_server
from tools import ToolRegistry
from tools.builtins import calculator
from workbench.chat_model import ChatModel
from workbench.errors import GenerationError
from workbench.models.generation import SamplingSettings
from workbench.models.remote_backend import RemoteBackend
from workbench.models.spec import ModelSpec
from workbench.modes.chat import ChatSession
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import split_code
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession

pytestmark = pytest.mark.model

GREEDY = SamplingSettings(temperature=0.0, top_p=0.9, max_new_tokens=8, repetition_penalty=1.1)
# The workbench's server playing Ollama (tool_choice ignored) and llama-cpp-python (json_schema and null
# content refused); together they would push a forced call to json_object, where the 135M model writes
# the call's shape on its own (that step is covered by the scripted server of test_remote_adapt.py).
IMITATIONS = {
    "workbench-as-ollama": "ignore-tool-choice",
    "workbench-as-llama-cpp-python": "refuse-json-schema,refuse-null-content",
}
SERVERS = ["llama-cpp-python", *IMITATIONS]


def _start(kind: str, log: Path) -> AbstractContextManager[tuple[str, str, subprocess.Popen[bytes]]]:
    return llama_cpp_server(log) if kind == "llama-cpp-python" else imitating_server(log, IMITATIONS[kind])


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A running server of each kind (shared by the tests that do not kill it): base URL, model id."""
    log = tmp_path_factory.mktemp("server") / f"{request.param}.log"
    with _start(request.param, log) as (url, model_id, _process):
        yield url, model_id


@pytest.fixture(scope="module")
def remote(server: tuple[str, str]) -> ChatModel:
    url, model_id = server
    return ChatModel.load(ModelSpec.from_env(f"openai:{url}#{model_id}", env={}))


def _profile(model: ChatModel) -> Any:
    assert isinstance(model.backend, RemoteBackend)
    return model.backend.profile


def test_chat(remote: ChatModel) -> None:
    turn = ChatSession(remote, settings=GREEDY).send("Name three colors.")
    text = "".join(turn.text())
    assert text.strip() and turn.message is not None and turn.message.failure is None
    assert turn.message.content == text.strip() or text.startswith(turn.message.content)


def test_tool_mode_required_call_gets_its_result(remote: ChatModel) -> None:
    registry = ToolRegistry()
    registry.add(calculator)
    options = ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=2)
    session = ToolSession(remote, registry, settings=GREEDY.with_(max_new_tokens=24), options=options)
    list(session.send("What is 12 times 7?"))
    messages = session.messages
    assert [m.role.value for m in messages[:3]] == ["user", "assistant", "observation"], messages
    (call,) = messages[1].tool_calls
    assert call.name == "calculator" and isinstance(call.arguments, dict)
    observation = messages[2]
    assert observation.tool_call_id == call.id and observation.name == "calculator"
    if not observation.error:
        assert observation.content.strip()
    assert messages[3].role.value == "assistant" and messages[3].failure is None  # answered after the result
    assert "tool" in _profile(remote).summary() or _profile(remote).seen


@pytest.mark.kernel
def test_code_mode_forced_runs_in_the_kernel(remote: ChatModel) -> None:
    with KernelSession(sandbox=True) as kernel:
        session = CodeSession(
            remote,
            kernel,
            settings=GREEDY.with_(max_new_tokens=64),
            code_settings=CodeSettings(max_rounds=1, force_code=True),
        )
        list(session.send("What is 2**20? Use Python."))
    messages = session.messages
    assert [m.role.value for m in messages[:3]] == ["user", "assistant", "observation"], messages
    code_turn, observation = messages[1], messages[2]
    code = split_code(code_turn)[1]
    assert code_turn.interpreter and code and code.strip(), code_turn  # the forced call's code
    assert observation.name == "interpreter" and observation.execution is not None  # it ran in the kernel
    if code.replace(" ", "").strip() in ("print(2**20)", "2**20"):  # the model's code is not forced
        assert "1048576" in observation.content
    # The answer after the run went out too (content "" beside the call where null is refused).
    assert len(messages) >= 4 and messages[3].failure is None, messages[3:]


def test_stop_ends_the_answer_and_the_server_goes_on(remote: ChatModel) -> None:
    turn = ChatSession(remote, settings=GREEDY.with_(max_new_tokens=2000)).send("Write a long story.")
    chunks = turn.text()
    next(chunks), next(chunks)
    started = time.monotonic()
    turn.close()
    assert time.monotonic() - started < 60
    assert turn.message is not None and turn.message.stopped and turn.message.content
    again = ChatSession(remote, settings=GREEDY).send("Hi")
    assert "".join(again.text()).strip() and again.message is not None and again.message.failure is None


@pytest.mark.parametrize("kind", SERVERS)
def test_server_killed_mid_answer_keeps_the_partial_answer(kind: str, tmp_path: Path) -> None:
    with _start(kind, tmp_path / "server.log") as (url, model_id, process):
        model = ChatModel.load(ModelSpec.from_env(f"openai:{url}#{model_id}", env={}))
        session = ChatSession(model, settings=GREEDY.with_(max_new_tokens=2000))
        turn = session.send("Write a long story about a dragon.")
        chunks = turn.text()
        received = [next(chunks), next(chunks)]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        with pytest.raises(GenerationError) as caught:
            received.extend(chunks)
    message = str(caught.value)
    assert message.endswith(
        "stopped answering in the middle of the answer; the partial answer is kept. Check that it is running."
    ), message
    assert ".." not in message and "max new tokens" not in message
    reply = session.messages[-1]
    assert reply.role.value == "assistant" and reply.content and reply.failure
    assert reply.content.strip() == "".join(received).strip()
