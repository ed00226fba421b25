"""Tool mode end to end on the real embedded SmolLM2-135M: constrained calls, observations, the answer."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from tests.cli_helpers import run_cli
from tests.scripted import ScriptedBackend
from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.dialects import HermesDialect
from workbench.messages import Role, ToolCall
from workbench.models.generation import SamplingSettings
from workbench.modes.events import MessageDone, TextDelta
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession, default_tool_choice

pytestmark = pytest.mark.model

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=40, repetition_penalty=1.1)

CUSTOM_TOOL = '''from typing import Literal

from tools import tool


@tool
def convert_temperature(value: float, to: Literal["celsius", "fahrenheit"]) -> float:
    """Convert a temperature between Celsius and Fahrenheit.

    Args:
        value: The temperature to convert.
        to: The unit to convert into.
    """
    return (value - 32) * 5 / 9 if to == "celsius" else value * 9 / 5 + 32
'''


def add(a: Literal[1234], b: Literal[4321]) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def test_required_calls_the_tool_and_what_follows_streams_after_it(chat_model):
    # The call is exact on purpose: the tool's schema allows these arguments only (the calculator's
    # expression is the model's own pick: "1234 + 4321" here, "1234, 4321" on an AVX-512 machine).
    registry = ToolRegistry()
    registry.add(add)
    options = ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=2)
    session = ToolSession(chat_model, registry, settings=GREEDY, options=options)
    events = list(session.send("What is 1234 plus 4321?"))
    call, observation, following, *_ = [e.message for e in events if isinstance(e, MessageDone)]
    assert call.tool_calls == [ToolCall("add", {"a": 1234, "b": 4321})]
    assert (observation.name, observation.content, observation.error) == ("add", "5555", False)
    assert observation.tool_call_id == call.tool_calls[0].id
    # What the model writes after the result (an answer, or another call) is its own pick; whatever it is,
    # it is an assistant message whose text streamed after the result.
    assert following.role is Role.ASSISTANT and following.stats is not None
    start, end = events.index(MessageDone(observation)), events.index(MessageDone(following))
    streamed = "".join(e.text for e in events[start:end] if isinstance(e, TextDelta))
    assert streamed.strip() == following.content.strip()
    assert not any(isinstance(e, TextDelta) for e in events[: events.index(MessageDone(call))])  # forced


def test_cli_calls_a_custom_tool_from_the_tools_path_beside_broken_files(tmp_path):
    folder = tmp_path / "my_tools"
    folder.mkdir()
    (folder / "temperature.py").write_text(CUSTOM_TOOL)
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    (folder / "no_docstring.py").write_text("from tools import tool\n\n\n@tool\ndef bad(x):\n    return x\n")
    done = run_cli(
        "ask",
        "--mode",
        "tool",
        "--tool-choice",
        "required",
        "--json",
        "--temperature",
        "0",
        "--max-new-tokens",
        "40",
        "--max-rounds",
        "1",
        "Convert 100 degrees Fahrenheit to Celsius.",
        env={"WORKBENCH_TOOLS_PATH": str(folder), "WORKBENCH_DEVICE": "cpu"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "broken.py" in done.stderr and "not_a_module_anywhere" in done.stderr
    assert "no_docstring.py" in done.stderr and "docstring" in done.stderr
    messages = json.loads(done.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "observation"]
    # The schema holds the call's shape; which value and unit the model writes is its own pick.
    (call,) = messages[1]["tool_calls"]
    value, to = call["arguments"]["value"], call["arguments"]["to"]
    assert call["name"] == "convert_temperature" and set(call["arguments"]) == {"value", "to"}
    assert isinstance(value, int | float) and to in ("celsius", "fahrenheit")
    assert messages[2]["tool_call_id"] == call["id"]
    converted = (value - 32) * 5 / 9 if to == "celsius" else value * 9 / 5 + 32  # what the file's tool does
    assert {k: messages[2][k] for k in ("name", "content")} == {
        "name": "convert_temperature",
        "content": str(converted),
    }
    assert "error" not in messages[2]
    assert "Stopped after 1 rounds" in done.stderr


@pytest.mark.model
def test_the_embedded_model_is_made_to_call_by_default_other_models_choose(chat_model):
    assert default_tool_choice(chat_model) is ToolChoice.REQUIRED  # it never opens a call on its own
    other = ChatModel(ScriptedBackend(), dialect=HermesDialect(chat_model.backend.template))
    assert default_tool_choice(other) is ToolChoice.AUTO
