"""``python -m workbench chat | ask``: as a user runs it (a subprocess) and in-process for the edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli, run_main
from workbench.cli import COMMANDS, Command, build_parser, main
from workbench.cli.ask import ASK_RUNNERS
from workbench.cli.parser import AskMode


@pytest.mark.model
def test_ask_json_prints_the_transcript():
    result = run_cli(
        "ask", "--json", "--temperature", "0", "--max-new-tokens", "24", "Which city is the capital of France?"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    messages = transcript["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "Which city is the capital of France?"
    # The words are this 135M model's greedy pick, which changes with the CPU: assert the answer is there.
    assert messages[1]["content"].strip()
    stats = messages[1]["stats"]
    assert stats["finish_reason"] in ("eos", "length") and 0 < stats["new_tokens"] <= 24
    assert "[workbench] Loading weights from" in result.stderr  # progress goes to stderr, not stdout


@pytest.mark.model
def test_chat_reads_standard_input_clear_and_stop():
    result = run_cli(
        "chat", "--temperature", "0", "--max-new-tokens", "12", stdin="hello\nclear\nstop\nnever read\n"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Workbench chat. Type 'clear' to empty the history, 'stop' or Ctrl-D to exit.")
    assert out.count("Assistant: ") == 1
    reply = out.split("Assistant: ", 1)[1].split("\n", 1)[0]
    assert reply.strip(), out
    assert "(history cleared)" in out
    assert "never read" not in out


def test_bad_model_path_exits_1_with_a_clear_message(tmp_path):
    missing = tmp_path / "no-such-model"
    result = run_cli("ask", "--model", str(missing), "hello", timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"Error: Model path {str(missing)!r} does not exist. Give a Hugging Face model folder, a .gguf file, a model "
        "name on the Hugging Face Hub (ORG/REPO, ORG/REPO-GGUF:QUANT), or 'embedded'."
    )


def test_model_path_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "chatglm3-6b"))
    code, out, err = run_main("ask", "hello")
    assert code == 1 and out == ""
    assert "chatglm3-6b' does not exist" in err


def bad_model(folder: Path, kind: str) -> Path:
    """A model path that cannot load: missing, an empty folder, a text file or a non-GGUF .gguf file."""
    path = folder / {"missing": "missing.gguf", "no-weights": "empty", "not-gguf": "notes.txt"}.get(
        kind, "bad.gguf"
    )
    if kind == "no-weights":
        path.mkdir()
    elif kind != "missing":
        path.write_bytes(b"junk")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("no-weights", "holds no model weights"),
        ("not-gguf", "is a file but not a .gguf file"),
        ("bad-magic", "is not a GGUF file"),
    ],
)
def test_bad_models_exit_1(tmp_path, kind, message):
    code, out, err = run_main("chat", "--model", str(bad_model(tmp_path, kind)), stdin="hello\n")
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and message in err


@pytest.mark.parametrize("prompt", ["", "   ", "-"])
def test_empty_prompt_exits_1(prompt):
    code, out, err = run_main("ask", prompt, stdin="  \n")
    assert (code, out) == (1, "")
    assert err == "Error: The prompt is empty; pass some text (or '-' to read standard input).\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "--device", "tpu", "hi"], "argument --device: invalid choice: 'tpu'"),
        (["ask", "--dtype", "int4", "hi"], "argument --dtype: invalid choice: 'int4'"),
        (["ask", "--temperature", "hot", "hi"], "argument --temperature: invalid float value: 'hot'"),
        (["ask"], "the following arguments are required: prompt"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_options_exit_2_with_usage(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.model
def test_prompt_longer_than_the_context_exits_1():
    code, out, err = run_main("ask", "-", stdin="word " * 9000)
    assert (code, out) == (1, "")
    assert "tokens long but the model's context holds 8192. Clear the chat, shorten the message" in err


@pytest.mark.model
def test_ask_plain_prints_the_answer_and_reads_stdin():
    code, out, err = run_main(
        "ask", "-", "--temperature", "0", "--max-new-tokens", "24", stdin="Which city is the capital of France?"
    )
    assert code == 0, err
    assert out.strip() and out.endswith("\n")
    assert not out.lstrip().startswith("{")


@pytest.mark.model
def test_ask_system_prompt_and_max_new_tokens():
    code, out, err = run_main(
        "ask", "Tell me a long story.", "--json", "--system", "You are a pirate.", "--max-new-tokens", "3"
    )
    assert code == 0, err
    messages = json.loads(out)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == "You are a pirate."
    stats = messages[2]["stats"]
    assert (stats["new_tokens"], stats["finish_reason"]) == (3, "length")


@pytest.mark.model
def test_chat_keeps_going_after_a_message_that_is_too_long():
    code, out, err = run_main(
        "chat", "--temperature", "0", "--max-new-tokens", "8", stdin="word " * 9000 + "\nhello\n"
    )
    assert code == 0
    assert "tokens long but the model's context holds 8192" in err
    assert out.count("Assistant: ") == 1


def test_main_writes_to_the_streams_of_the_moment(capsys):
    """Not to the ones of import time: redirecting sys.stdout/sys.stderr (capsys here) must work."""
    assert main(["ask", "   "]) == 1
    assert (
        capsys.readouterr().err
        == "Error: The prompt is empty; pass some text (or '-' to read standard input).\n"
    )


def test_every_command_and_ask_mode_has_a_runner():
    assert set(COMMANDS) == set(Command)
    assert set(ASK_RUNNERS) == set(AskMode)
    assert "{chat,ask,exec,history,serve,tools,mcp,models,kb}" in build_parser().format_usage()
