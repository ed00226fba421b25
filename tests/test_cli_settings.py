"""Sampling settings and limits out of range are usage errors: exit 2, a clear message, no model loaded."""

from __future__ import annotations

import argparse
import io
from typing import TextIO

import pytest

from tests.cli_helpers import run_cli, run_main
from workbench.cli import EXIT_USAGE, ask, chat


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: the options must be refused before that."""

    def refuse(args: argparse.Namespace, err: TextIO) -> None:
        raise AssertionError("a model was loaded although an option was out of range")

    monkeypatch.setattr(ask, "load_chat_model", refuse)
    monkeypatch.setattr(chat, "load_chat_model", refuse)


BAD_SETTINGS = [
    (["--temperature", "-1"], "--temperature: temperature must be between 0 (greedy) and 2, not -1.0."),
    (["--temperature", "nan"], "--temperature: temperature must be a finite number between 0 (greedy) and 2, not nan."),
    (["--temperature", "inf"], "not inf"),
    (["--temperature", "2.5"], "between 0 (greedy) and 2, not 2.5"),
    (["--top-p", "5"], "--top-p: top_p must be above 0 and at most 1, not 5.0."),
    (["--top-p", "0"], "top_p must be above 0 and at most 1, not 0.0"),
    (["--max-new-tokens", "0"], "--max-new-tokens: max_new_tokens must be at least 1, not 0."),
    (["--max-new-tokens", "-5"], "max_new_tokens must be at least 1, not -5"),
    (["--repetition-penalty", "0"], "--repetition-penalty: repetition_penalty must be above 0"),
    (["--repetition-penalty", "-1"], "repetition_penalty must be above 0"),
]  # fmt: skip


@pytest.mark.parametrize("mode", ["chat", "tool", "code"])
@pytest.mark.parametrize(("options", "expected"), BAD_SETTINGS)
def test_ask_refuses_settings_out_of_range(mode: str, options: list[str], expected: str) -> None:
    code, out, err = run_main("ask", "--mode", mode, *options, "Hello")
    assert code == EXIT_USAGE == 2
    assert out == ""
    assert expected in err and "Fix the option and run again." in err


@pytest.mark.parametrize(("options", "expected"), BAD_SETTINGS[:3])
def test_chat_refuses_settings_out_of_range(options: list[str], expected: str) -> None:
    code, _, err = run_main("chat", *options, stdin="hi\n")
    assert code == 2 and expected in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ask", "--seed", "1.5", "x"], "argument --seed: invalid int value: '1.5'"),
        (["ask", "--max-rounds", "0", "x"], "argument --max-rounds: '0' must be at least 1"),
        (["ask", "--timeout", "-1", "--mode", "code", "x"], "argument --timeout: '-1' must be a number above 0"),
        (["ask", "--timeout", "nan", "x"], "argument --timeout: 'nan' must be a number above 0"),
        (["exec", "--timeout", "-1", "-"], "argument --timeout: '-1' must be a number above 0"),
        (["exec", "--timeout", "0", "-"], "'0' must be a number above 0"),
    ],
)  # fmt: skip
def test_argparse_refuses_bad_limits_with_status_2(argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as raised, pytest.MonkeyPatch.context() as patch:
        err = io.StringIO()
        patch.setattr("sys.stderr", err)
        run_main(*argv)
    assert raised.value.code == 2
    assert expected in err.getvalue()


def test_the_real_command_exits_2_before_loading_anything() -> None:
    result = run_cli("ask", "--temperature", "-1", "Hello", timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "Error: --temperature: temperature must be between 0 (greedy) and 2, not -1.0. "
        "Fix the option and run again."
    )
