"""Calling tools: every bad call becomes an error result the model can act on; nothing raises."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from tools import ToolRegistry, tool, truncate_for_model
from workbench.messages import Role, ToolCall

RELEASE = threading.Event()  # lets the slow tool finish once its test is over


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def describe(
    scale: float,
    flag: bool,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    values: list[int] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Echo the arguments back.

    Args:
        scale: A factor.
        flag: A switch.
        unit: A unit.
        values: Some numbers.
        note: A remark.
    """
    return {"scale": scale, "flag": flag, "unit": unit, "values": values, "note": note}


@tool
def fail(message: str) -> str:
    """Always fail.

    Args:
        message: What to complain about.
    """
    raise ValueError(message)


@tool
def quit_process() -> str:
    """Try to exit the process."""
    sys.exit(1)


@tool(timeout=0.2)
def slow() -> str:
    """Take too long."""
    RELEASE.wait(10)
    return "late"


@tool
def nothing() -> None:
    """Return nothing."""


class Thing:
    def __str__(self) -> str:
        return "a thing"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


@tool
def give(kind: str) -> Any:
    """Return a value of some kind.

    Args:
        kind: Which value.
    """
    return {
        "list": [1, "two", None],
        "tuple": (1, 2),
        "float": 2.5,
        "bool": True,
        "thing": Thing(),
        "text": "plain",
        "unicode": {"city": "Zürich"},
        "tuple_keys": {(1, 2): "x"},
        "unprintable": Unprintable(),
    }[kind]


@tool
async def later(x: int) -> int:
    """Add one, asynchronously.

    Args:
        x: A number.
    """
    return x + 1


def raw_call(name: str, arguments: Any) -> ToolCall:
    """A call with arguments of any type, as a model may send them."""
    return ToolCall(name, arguments)


@pytest.fixture(scope="module")
def registry() -> Iterator[ToolRegistry]:
    reg = ToolRegistry(default_timeout=5)
    for func in (add, describe, fail, quit_process, slow, nothing, give, later):
        reg.add(func)
    yield reg
    RELEASE.set()


@pytest.mark.parametrize(
    ("call", "error_type", "expected"),
    [
        (
            ToolCall("ad", {"a": 1}),
            "UnknownToolError",
            [
                "There is no tool named 'ad'. Did you mean 'add'?",
                "The tools you can call are: add, describe, fail",
            ],
        ),
        (raw_call("add", [1, 2]), "InvalidArgumentsError", ["must be a JSON object", "not array [1, 2]"]),
        (raw_call("add", 5), "InvalidArgumentsError", ['must be a JSON object, for example {"a": 1}']),
        (raw_call("add", '{"a": 1'), "InvalidArgumentsError", ["are not valid JSON", "Send a JSON object"]),
        (ToolCall("add", {}), "InvalidArgumentsError", ["missing required argument 'a'"]),
        (ToolCall("add", {"a": 1, "c": 2}), "InvalidArgumentsError", ["unexpected argument 'c'"]),
        (
            ToolCall("add", {"a": "seven"}),
            "InvalidArgumentsError",
            [
                "argument 'a' must be an integer, not string \"seven\"",
                "It takes a (integer, required), b (integer)",
            ],
        ),
        (
            ToolCall("add", {"a": 1.5}),
            "InvalidArgumentsError",
            ["argument 'a' must be an integer, not number 1.5"],
        ),
        (
            ToolCall("add", {"a": True}),
            "InvalidArgumentsError",
            ["argument 'a' must be an integer, not boolean"],
        ),
        (
            ToolCall("describe", {"scale": 1, "flag": "maybe"}),
            "InvalidArgumentsError",
            ["argument 'flag' must be true or false, not string \"maybe\""],
        ),
        (
            ToolCall("describe", {"scale": 1, "flag": True, "unit": "kelvin"}),
            "InvalidArgumentsError",
            ['argument \'unit\' must be one of "celsius", "fahrenheit", not "kelvin"'],
        ),
        (
            ToolCall("describe", {"scale": 1, "flag": True, "values": [1, "x"]}),
            "InvalidArgumentsError",
            ["argument 'values.1' must be an integer, not string \"x\""],
        ),
        (
            ToolCall("describe", {"scale": 1, "flag": True, "values": 3}),
            "InvalidArgumentsError",
            ["argument 'values' must be an array or null, not integer 3"],
        ),
        (
            ToolCall("describe", {"flag": 1, "extra": 1}),
            "InvalidArgumentsError",
            [
                "missing required argument 'scale'; unexpected argument 'extra'; "
                "argument 'flag' must be true or false"
            ],
        ),
        (
            ToolCall("fail", {"message": "disk on fire"}),
            "ToolRaisedError",
            ["'fail' failed with ValueError: disk on fire"],
        ),
        (ToolCall("fail", {"message": ""}), "ToolRaisedError", ["failed with ValueError: (no message)"]),
        (ToolCall("quit_process", {}), "ToolRaisedError", ["failed with SystemExit: 1"]),
        (ToolCall("give", {"kind": "unprintable"}), "ToolRaisedError", ["RuntimeError: cannot print me"]),
        (ToolCall("give", {"kind": "nope"}), "ToolRaisedError", ["KeyError: 'nope'"]),
        (
            ToolCall("slow", {}),
            "ToolTimeoutError",
            ["'slow' did not finish within its limit of 0.2 seconds and was abandoned"],
        ),
    ],
)
def test_bad_calls_become_error_results(registry, call, error_type, expected):
    result = registry.call(call)
    assert result.error is True
    assert result.error_type == error_type
    assert result.name == call.name
    for fragment in expected:
        assert fragment in result.content


def test_switched_off_tool(registry):
    result = registry.call(ToolCall("add", {"a": 1}), enabled={"describe", "fail"})
    assert (result.error, result.error_type) == (True, "ToolDisabledError")
    assert result.content == (
        "The tool 'add' is switched off in this conversation, so it cannot be called. "
        "The tools you can call are: describe, fail."
    )
    nothing_on = registry.call(ToolCall("nope", {}), enabled=set())
    assert "(none: no tool is switched on)" in nothing_on.content


def test_timeout_is_the_tools_own_then_the_calls(registry):
    started = time.perf_counter()
    result = registry.call(ToolCall("slow", {}), timeout=30)
    assert result.error_type == "ToolTimeoutError"
    assert time.perf_counter() - started < 2
    assert 0.2 <= result.duration_s < 2


def test_call_timeout_applies_to_tools_without_one():
    gate = threading.Event()

    def wait() -> str:
        """Wait for the gate."""
        gate.wait(10)
        return "done"

    reg = ToolRegistry()
    reg.add(wait)
    result = reg.call(ToolCall("wait", {}), timeout=0.1)
    gate.set()
    assert "within its limit of 0.1 seconds" in result.content


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"scale": "2.5", "flag": "true"}, {"scale": 2.5, "flag": True}),
        ({"scale": "7", "flag": "False"}, {"scale": 7, "flag": False}),
        ({"scale": 1, "flag": True, "values": "[1, 2]"}, {"values": [1, 2]}),
        ({"scale": 1, "flag": True, "values": ["1", 2.0]}, {"values": [1, 2]}),
        ({"scale": 1, "flag": True, "unit": "Fahrenheit"}, {"unit": "fahrenheit"}),
        ({"scale": 1, "flag": True, "note": None}, {"note": None}),
        ({"scale": 1, "flag": True, "note": "7"}, {"note": "7"}),
        ('{"scale": 1, "flag": true}', {"scale": 1, "flag": True}),
    ],
)
def test_arguments_are_coerced(registry, arguments, expected):
    result = registry.call(ToolCall("describe", arguments))
    assert result.error is False, result.content
    for key, value in expected.items():
        assert result.arguments[key] == value
        assert type(result.arguments[key]) is type(value)


def test_string_number_becomes_integer(registry):
    result = registry.call(ToolCall("add", {"a": "7", "b": " 3 "}))
    assert (result.content, result.arguments) == ("10", {"a": 7, "b": 3})
    assert registry.call(ToolCall("add", {"a": 7.0})).content == "7"


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("list", '[1, "two", null]'),
        ("tuple", "[1, 2]"),
        ("float", "2.5"),
        ("bool", "True"),
        ("thing", "a thing"),
        ("text", "plain"),
        ("unicode", '{"city": "Zürich"}'),
        ("tuple_keys", "{(1, 2): 'x'}"),
    ],
)
def test_results_become_text(registry, kind, content):
    result = registry.call(ToolCall("give", {"kind": kind}))
    assert (result.error, result.content) == (False, content)


def test_dict_none_and_async_results(registry):
    result = registry.call(ToolCall("describe", {"scale": 1, "flag": False}))
    assert result.content == '{"scale": 1, "flag": false, "unit": "celsius", "values": null, "note": null}'
    assert registry.call(ToolCall("nothing", None)).content == "(no result)"  # type: ignore[arg-type]
    assert registry.call(ToolCall("later", {"x": 1})).content == "2"


def test_result_becomes_an_observation(registry):
    ok = registry.call(ToolCall("add", {"a": 2, "b": 3}))
    assert ok.duration_s >= 0
    message = ok.to_message()
    assert (message.role, message.name, message.content, message.error) == (
        Role.OBSERVATION,
        "add",
        "5",
        False,
    )
    failed = registry.call(ToolCall("add", {})).to_message()
    assert failed.error is True and failed.to_dict()["error"] is True


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("x" * 1300, 66, "x" * 66 + "\n[... 1234 more characters cut ...]"),
        ("abc", 0, "\n[... 3 more characters cut ...]"),
    ],
)
def test_truncate_for_model(text, limit, expected):
    assert truncate_for_model(text, limit) == expected
