"""What a tool is: the ``@tool`` decorator, :class:`ToolSpec` and the schema built for it.

A tool is a plain typed function with a Google-style docstring::

    @tool
    def add(a: int, b: int) -> int:
        '''Add two integers.

        Args:
            a: The first number.
            b: The second number.
        '''
        return a + b

``@tool`` only marks the function and returns it unchanged, so ``add(1, 2)`` still works in a test.
The JSON schema comes from ``transformers.utils.get_json_schema`` (imported on first use: transformers
is slow to import) when the function is registered, so the schema the UI shows is the one the chat
template gives the model. A hand-written schema goes through :func:`tool_from_schema` instead.

This module is the leaf of the package: ``registry``, ``loading``, ``calling`` and ``builtins`` import
from it, never the other way round.
"""  # noqa: D214 (the "Args:" above belongs to the example)

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from tools.arguments import check_parameters_schema
from workbench.errors import ToolDefinitionError

F = TypeVar("F", bound=Callable[..., Any])

TOOL_MARK = "__workbench_tool__"
"""Attribute ``@tool`` sets on a function: a dict with the ``name`` and ``timeout`` it was given."""

#: A tool's name: OpenAI's pattern ``^[a-zA-Z0-9_-]{1,64}$``, starting with a letter or ``_`` as a Python
#: name does (matched whole: ``$`` alone would let a trailing newline through).
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


@overload
def tool(func: F, /) -> F: ...
@overload
def tool(*, name: str | None = None, timeout: float | None = None) -> Callable[[F], F]: ...
def tool(
    func: Callable[..., Any] | None = None, /, *, name: str | None = None, timeout: float | None = None
) -> Any:
    """Mark a function as a tool; use bare (``@tool``) or with options (``@tool(name="x", timeout=5)``).

    Args:
        func: The function (when used bare).
        name: The name the model calls it by; defaults to the function's name.
        timeout: Seconds a call may run; defaults to the registry's limit.

    Returns:
        The same function, unchanged apart from a marker attribute.
    """
    if func is not None and not callable(func):
        raise ToolDefinitionError(
            f"@tool({func!r}) is not valid: give options by keyword, as in @tool(name='x')."
        )
    if timeout is not None and not timeout > 0:
        raise ToolDefinitionError(
            f"@tool(timeout={timeout!r}): the timeout must be a positive number of seconds."
        )

    def mark(f: F) -> F:
        setattr(f, TOOL_MARK, {"name": name, "timeout": timeout})
        return f

    return mark if func is None else mark(func)


def is_tool(obj: Any) -> bool:
    """Whether ``obj`` is a function marked with ``@tool``."""
    return callable(obj) and isinstance(getattr(obj, TOOL_MARK, None), dict)


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool.

    Attributes:
        name: The name the model calls.
        description: What the tool does, shown to the model.
        parameters: The JSON schema of the arguments (``{"type": "object", "properties": ...}``).
        function: The plain function that runs the tool.
        source: Where it came from: ``builtin``, a file path, a module or an entry point.
        timeout: Seconds a call may run, or None for the registry's limit.
        returns: The JSON schema of the return value, from the function's return annotation (None when
            it has none); ``workbench mcp`` offers it as the tool's ``outputSchema``.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    source: str
    timeout: float | None = None
    returns: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """Return the OpenAI-style tool dict that ``apply_chat_template(tools=...)`` takes."""
        function = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": function}


def spec_from_function(
    func: Callable[..., Any],
    *,
    source: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> ToolSpec:
    """Build a spec from a typed function with a Google-style docstring (``@tool`` options apply).

    Raises:
        ToolDefinitionError: If the hints or the docstring cannot give a schema; the message names the
            function, its file and the fix.
    """
    from transformers.utils import get_json_schema  # imported here: transformers is slow to import

    options = getattr(func, TOOL_MARK, None) or {}
    where = describe_location(func)
    _refuse_star_parameters(func, where)
    try:
        schema = get_json_schema(func)["function"]
    except Exception as exc:
        raise ToolDefinitionError(f"Tool {where} has no usable schema: {exc} {_fix_for(exc)}") from None
    if not schema.get("description"):
        raise ToolDefinitionError(
            f"Tool {where} has no description: start its docstring with a line saying what the tool does."
        )
    return _checked_spec(
        name=name or options.get("name") or schema["name"],
        description=schema["description"],
        parameters=schema["parameters"],
        function=func,
        source=source or describe_source(func),
        timeout=timeout if timeout is not None else options.get("timeout"),
        returns=schema.get("return"),
    )


def _refuse_star_parameters(func: Callable[..., Any], where: str) -> None:
    """Refuse ``*args`` and ``**kwargs``: a JSON schema names every argument, so they cannot be called well."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # no signature to read: get_json_schema reports it
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            star = f"*{parameter.name}"
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            star = f"**{parameter.name}"
        else:
            continue
        raise ToolDefinitionError(
            f"Tool {where} takes {star}: a tool's arguments must each be named with a type hint, because "
            f"the model sees one schema property per argument. Replace {star} with named parameters (a "
            "list[...] or dict[str, ...] parameter holds many values)."
        )


def tool_from_schema(
    schema: Mapping[str, Any],
    func: Callable[..., Any],
    *,
    source: str | None = None,
    timeout: float | None = None,
) -> ToolSpec:
    """Build a spec from a hand-written OpenAI-style schema and the function that runs it.

    Args:
        schema: ``{"type": "function", "function": {"name", "description", "parameters"}}`` or the inner dict.
        func: Called with the arguments as keywords.
        source: Where the tool comes from; defaults to the function's file.
        timeout: Seconds a call may run, or None for the registry's limit.

    Raises:
        ToolDefinitionError: If the schema lacks a name or description or its parameters are not a
            valid JSON schema.
    """
    inner = schema.get("function", schema)
    name = inner.get("name") if isinstance(inner, Mapping) else None
    if not isinstance(name, str) or not isinstance(inner.get("description"), str):
        raise ToolDefinitionError(
            f"The schema for {describe_location(func)} needs a string 'name' and 'description', "
            'as in {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}.'
        )
    parameters = inner.get("parameters") or {"type": "object", "properties": {}}
    return _checked_spec(
        name=name,
        description=inner["description"],
        parameters=dict(parameters),
        function=func,
        source=source or describe_source(func),
        timeout=timeout,
    )


def _checked_spec(**fields: Any) -> ToolSpec:
    spec = ToolSpec(**fields)
    if not callable(spec.function):
        raise ToolDefinitionError(
            f"Tool {spec.name!r} from {spec.source}: {spec.function!r} is not callable."
        )
    if not isinstance(spec.name, str) or not TOOL_NAME.fullmatch(spec.name):
        raise ToolDefinitionError(
            f"Tool name {spec.name!r} from {spec.source} is not valid: use letters, digits, _ or -, at most "
            "64 characters, for example @tool(name='my_tool')."
        )
    problem = check_parameters_schema(spec.parameters)
    if problem:
        raise ToolDefinitionError(f"Tool {spec.name!r} from {spec.source}: {problem}")
    return spec


def _fix_for(exc: Exception) -> str:
    kind = type(exc).__name__
    if kind == "DocstringParsingException":
        return (
            "Fix: write a Google-style docstring: a line saying what the tool does, then an 'Args:' section "
            "with one 'name: description' line per parameter."
        )
    if kind in ("TypeHintParsingException", "NameError"):
        return (
            "Fix: give every parameter a type hint made of int, float, str, bool, Literal[...], list[...], "
            "dict[str, ...] or X | None, or write the schema by hand with tool_from_schema()."
        )
    return "Fix the function's hints and docstring, or write the schema by hand with tool_from_schema()."


def describe_source(func: Any) -> str:
    """Return the file that defines ``func``, or its module when it has no file."""
    code = getattr(func, "__code__", None)
    if code is not None and Path(code.co_filename).is_file():
        return code.co_filename
    return getattr(func, "__module__", None) or repr(func)


def describe_location(func: Any) -> str:
    """Return ``'name' (file:line)`` for error messages."""
    name = getattr(func, "__name__", repr(func))
    code = getattr(func, "__code__", None)
    if code is None:
        return f"{name!r} ({describe_source(func)})"
    return f"{name!r} ({code.co_filename}:{code.co_firstlineno})"
