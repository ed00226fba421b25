"""``ask --mode tool`` in process, with a scripted model: options, load errors on stderr, the JSON transcript."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_main
from tests.scripted import ScriptedBackend, call, hermes
from workbench.chat_model import ChatModel
from workbench.cli import ask

BROKEN = "def oops(:\n"
GOOD = '''from tools import tool


@tool
def echo(text: str) -> str:
    """Say the text back.

    Args:
        text: What to say.
    """
    return text
'''


@pytest.fixture
def scripted(monkeypatch):
    backend = ScriptedBackend()
    monkeypatch.setattr(ask, "load_chat_model", lambda args, err: ChatModel(backend, dialect=hermes()))
    monkeypatch.delenv("WORKBENCH_TOOLS_PATH", raising=False)
    return backend


def run(*argv: str) -> tuple[int, str, str]:
    return run_main("ask", "--mode", "tool", *argv)


def test_json_transcript_and_load_errors_on_stderr(scripted, tmp_path):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text(BROKEN)
    scripted.replies += [call("echo", text="hi"), "It said hi."]
    code, out, err = run("--tools-path", str(tmp_path), "--tool-choice", "required", "--json", "Echo hi")
    assert code == 0
    assert "Tool not loaded from" in err and "broken.py" in err
    assert "[tool] echo" in err
    messages = json.loads(out)["messages"]
    call_id = messages[1]["tool_calls"][0]["id"]
    assert messages[1]["tool_calls"] == [{"id": call_id, "name": "echo", "arguments": {"text": "hi"}}]
    assert messages[2] == {
        **messages[2],
        "role": "observation",
        "name": "echo",
        "content": "hi",
        "tool_call_id": call_id,
    }
    assert messages[3]["content"] == "It said hi."
    assert '"name": "echo"' in scripted.requests[0].prompt  # the folder's tool was offered


def test_plain_output_streams_the_answer_and_a_failed_call_is_reported(scripted):
    scripted.replies += [call("calculator", expression="1/0"), "Cannot divide by zero."]
    code, out, err = run("--tool-choice", "required", "Divide 1 by 0")
    assert code == 0 and out == "Cannot divide by zero.\n"
    assert "[tool] calculator failed:" in err


def test_tool_choice_none_and_max_rounds_reach_the_loop(scripted):
    scripted.replies += ["No tools here."]
    code, out, _ = run("--tool-choice", "none", "--max-rounds", "1", "--json", "Hi")
    assert code == 0 and "<tools>" not in scripted.requests[0].prompt
    assert json.loads(out)["messages"][-1]["content"] == "No tools here."


def test_an_empty_prompt_is_refused(scripted):
    code, _, err = run("  ")
    assert code == 1 and "prompt is empty" in err


def test_a_tool_file_that_kills_or_hangs_the_loader_is_named_and_the_answer_still_comes(
    scripted, tmp_path, monkeypatch
):
    """Issue 11: os._exit(1) at import used to end the CLI with exit 1 and no word; a sleeper, 60 s of silence."""
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "killer.py").write_text("import os\nos._exit(1)\n")
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setenv("WORKBENCH_TOOL_IMPORT_TIMEOUT_S", "3")
    scripted.replies += [call("echo", text="alive"), "It said alive."]
    code, out, err = run("--tools-path", str(tmp_path), "--tool-choice", "required", "Echo alive")
    assert code == 0 and out == "It said alive.\n"
    lines = err.splitlines()
    assert lines[0] == "[workbench] Loading tools…"
    assert f"[workbench] Loading tools: importing {tmp_path / 'sleeper.py'}" in lines
    assert f"Tool not loaded from {tmp_path / 'killer.py'}" in err and "killed the tool loader" in err
    assert f"Tool not loaded from {tmp_path / 'sleeper.py'}" in err and "took longer than 3 s" in err
    assert "[tool] echo returned: alive" in err
