"""Schemas from type hints and Google docstrings, and hand-written schemas."""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

import pytest

from tools import ToolRegistry, tool, tool_from_schema
from tools.spec import spec_from_function
from workbench.errors import DuplicateToolError, ToolDefinitionError
from workbench.messages import ToolCall


@tool
def plan_trip(
    city: str,
    days: int,
    mode: Literal["train", "plane", "car"] = "train",
    budget: Optional[float] = None,  # noqa: UP045 (the old spelling must work too)
    stops: list[list[int]] | None = None,
    prices: dict[str, float] | None = None,
) -> str:
    """Plan a trip.

    Args:
        city: The city to visit.
        days: How many days to stay.
        mode: How to travel.
        budget: The most to spend, in euros.
        stops: Groups of stop numbers,
            one list per day.
        prices: Known prices by item.
    """
    return f"{days} days in {city} by {mode}"


class Colour(Enum):
    RED = "red"
    GREEN = "green"


def test_tool_returns_the_function_unchanged():
    assert plan_trip("Rome", 2) == "2 days in Rome by train"
    assert plan_trip.__name__ == "plan_trip"

    def f(x: int) -> int:
        """Double.

        Args:
            x: A number.
        """
        return 2 * x

    assert tool(f) is f
    assert tool(name="double", timeout=3)(f) is f


def test_schema_from_hints_and_docstring():
    spec = spec_from_function(plan_trip)
    props = spec.parameters["properties"]
    assert spec.name == "plan_trip"
    assert spec.description == "Plan a trip."
    assert spec.parameters["required"] == ["city", "days"]
    assert props["city"] == {"type": "string", "description": "The city to visit."}
    assert props["days"]["type"] == "integer"
    assert props["mode"]["enum"] == ["train", "plane", "car"]
    assert props["budget"]["type"] == "number" and props["budget"]["nullable"] is True
    assert props["stops"]["items"] == {"type": "array", "items": {"type": "integer"}}
    assert props["stops"]["description"] == "Groups of stop numbers, one list per day."
    assert props["prices"]["additionalProperties"] == {"type": "number"}
    assert spec.source == __file__


def test_schema_is_the_openai_tool_dict():
    spec = spec_from_function(plan_trip)
    assert spec.schema() == {
        "type": "function",
        "function": {"name": "plan_trip", "description": "Plan a trip.", "parameters": spec.parameters},
    }


def test_enum_class_becomes_enum():
    def paint(colour: Colour) -> str:
        """Paint.

        Args:
            colour: The colour.
        """
        return colour.value

    assert spec_from_function(paint).parameters["properties"]["colour"]["enum"] == ["red", "green"]


def test_tool_options_name_and_timeout():
    @tool(name="trip", timeout=5)
    def f(city: str) -> str:
        """Go.

        Args:
            city: Where.
        """
        return city

    spec = spec_from_function(f)
    assert (spec.name, spec.timeout) == ("trip", 5)
    assert spec.schema()["function"]["name"] == "trip"


def _no_docstring(x: int) -> int:
    return x


def _undescribed_arg(x: int, y: int) -> int:
    """Add.

    Args:
        x: The first.
    """
    return x + y


def _missing_hint(x, y: int) -> int:  # type: ignore[no-untyped-def,unused-ignore]
    """Add.

    Args:
        x: The first.
        y: The second.
    """
    return x + y


def _custom_class_hint(x: Colour | ToolRegistry) -> str:
    """Show.

    Args:
        x: A thing.
    """
    return str(x)


def _only_args(x: int) -> int:
    """Args:
    x: A number.
    """
    return x


def _mixed(a: int, **extra: str) -> str:
    """Mix.

    Args:
        a: A number.
        extra: More.
    """
    return str(a)


def _kwargs_only(**kwargs: int) -> str:
    """Take anything.

    Args:
        kwargs: Anything.
    """
    return str(kwargs)


def _star_args(first: int, *rest: int) -> int:
    """Sum.

    Args:
        first: A number.
        rest: More numbers.
    """
    return first + sum(rest)


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (_mixed, ["'_mixed'", "takes **extra", "Replace **extra with named parameters"]),
        (_kwargs_only, ["'_kwargs_only'", "takes **kwargs"]),
        (_star_args, ["'_star_args'", "takes *rest", "list[...]"]),
        (_no_docstring, ["'_no_docstring'", "no docstring", "Google-style docstring"]),
        (_undescribed_arg, ["'_undescribed_arg'", "no description for the argument 'y'", "'Args:' section"]),
        (_missing_hint, ["'_missing_hint'", "missing a type hint", "give every parameter a type hint"]),
        (_custom_class_hint, ["'_custom_class_hint'", "custom class", "tool_from_schema"]),
        (_only_args, ["'_only_args'", "Cannot generate JSON schema", "Google-style docstring"]),
    ],
)
def test_incomplete_functions_are_refused_with_the_fix(func, expected):
    with pytest.raises(ToolDefinitionError) as info:
        spec_from_function(func)
    message = str(info.value)
    assert f"{__file__}:{func.__code__.co_firstlineno}" in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("timeout", [0, -1])
def test_bad_timeout_is_refused(timeout):
    with pytest.raises(ToolDefinitionError, match="positive number of seconds"):
        tool(timeout=timeout)


@pytest.mark.parametrize("name", ["two words", "x" * 65, "1st", "ok\n", 'a"b', "a\\b", "é"])
def test_bad_name_is_refused(name):
    def f(x: int) -> int:
        """Same.

        Args:
            x: A number.
        """
        return x

    with pytest.raises(ToolDefinitionError, match="is not valid: use letters, digits"):
        spec_from_function(tool(name=name)(f))


def test_registry_add_and_duplicate():
    registry = ToolRegistry()
    spec = registry.add(plan_trip)
    assert registry.get("plan_trip") is spec
    assert registry.add(plan_trip) is not None  # the same function twice is harmless
    assert registry.names() == ["plan_trip"]

    def plan_trip_2(city: str) -> str:
        """Plan.

        Args:
            city: Where.
        """
        return city

    other = tool(name="plan_trip")(plan_trip_2)
    with pytest.raises(DuplicateToolError, match="Two tools are named 'plan_trip'"):
        registry.add(other)


def test_schemas_follow_enabled_names():
    registry = ToolRegistry()
    registry.load_builtins()
    assert [s["function"]["name"] for s in registry.schemas()] == registry.names()
    assert [s["function"]["name"] for s in registry.schemas(enabled={"calculator", "nope"})] == ["calculator"]
    assert registry.schemas(enabled=set()) == []


HAND_WRITTEN = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["word"],
        },
    },
}


def _lookup(word, limit=3):  # type: ignore[no-untyped-def,unused-ignore]
    return {"word": word, "limit": limit}


@pytest.mark.parametrize("schema", [HAND_WRITTEN, HAND_WRITTEN["function"]])
def test_tool_from_schema(schema):
    spec = tool_from_schema(schema, _lookup)
    assert spec.schema() == HAND_WRITTEN
    registry = ToolRegistry()
    registry.add(spec)
    assert (
        registry.call(ToolCall("lookup", {"word": "ox", "limit": "2"})).content
        == '{"word": "ox", "limit": 2}'
    )
    assert "missing required argument 'word'" in registry.call(ToolCall("lookup", {})).content


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"function": {"description": "x"}}, "needs a string 'name' and 'description'"),
        ({"name": "x"}, "needs a string 'name' and 'description'"),
        ({"name": "x", "description": "d", "parameters": {"type": "array"}}, 'of type "object"'),
        (
            {
                "name": "x",
                "description": "d",
                "parameters": {"type": "object", "properties": {"a": {"type": 5}}},
            },
            "not a valid JSON schema (at properties/a/type)",
        ),
    ],
)
def test_bad_hand_written_schema(schema, expected):
    with pytest.raises(ToolDefinitionError) as info:
        tool_from_schema(schema, _lookup)
    assert expected in str(info.value)


def test_positional_option_is_refused():
    with pytest.raises(ToolDefinitionError, match="give options by keyword"):
        tool("my_name")  # type: ignore[call-overload]
