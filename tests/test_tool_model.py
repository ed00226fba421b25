"""Tool mode end to end on the real embedded SmolLM2-135M: constrained calls, observations, the answer."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli
from tests.scripted import ScriptedBackend
from tools import default_registry
from workbench.chat_model import ChatModel
from workbench.conversation import ToolCall
from workbench.dialects import HermesDialect
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


def test_required_calls_the_calculator_and_the_answer_streams_after_it(chat_model):
    session = ToolSession(
        chat_model,
        default_registry(),
        settings=GREEDY,
        options=ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=2),
    )
    # The answer after the result is on a knife's edge for this 135M model: asked "What is 1234 plus 4321?",
    # it echoes <tool_response> (an empty answer) on llama.cpp's Q4_1 kernels and answers in float32.
    events = list(session.send("What is the sum of 1234 and 4321?"))
    call, observation, answer = [e.message for e in events if isinstance(e, MessageDone)]
    assert call.tool_calls == [ToolCall("calculator", {"expression": "1234 + 4321"})]
    assert (observation.name, observation.content, observation.error) == ("calculator", "5555", False)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.strip() == answer.content and answer.content
    last_delta = max(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(MessageDone(observation)) < last_delta  # the answer streams after the result


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
    call_id = messages[1]["tool_calls"][0]["id"]
    assert messages[1]["tool_calls"] == [
        {"id": call_id, "name": "convert_temperature", "arguments": {"value": 100, "to": "celsius"}}
    ]
    assert messages[2]["tool_call_id"] == call_id
    assert {k: messages[2][k] for k in ("name", "content")} == {
        "name": "convert_temperature",
        "content": "37.77777777777778",
    }
    assert "error" not in messages[2]
    assert "Stopped after 1 rounds" in done.stderr


@pytest.mark.model
def test_the_embedded_model_is_made_to_call_by_default_other_models_choose(chat_model):
    assert default_tool_choice(chat_model) is ToolChoice.REQUIRED  # it never opens a call on its own
    other = ChatModel(ScriptedBackend(), dialect=HermesDialect(chat_model.backend.template))
    assert default_tool_choice(other) is ToolChoice.AUTO
