"""Tools: the ``@tool`` decorator, :class:`ToolSpec` and the :class:`ToolRegistry` that loads and calls them.

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
The JSON schema comes from ``transformers.utils.get_json_schema`` when the function is registered,
so the schema the UI shows is the one the chat template gives the model. A registry is filled from
the built-ins, from ``*.py`` files in folders (``WORKBENCH_TOOLS_PATH``) and from the
``workbench.tools`` entry points; a file or tool that fails becomes a :class:`LoadError` in
``registry.errors`` while everything else still loads.
"""  # noqa: D214 (the "Args:" above belongs to the example)

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from tools import loading
from tools.arguments import check_parameters_schema
from tools.calling import ToolResult, call_tool
from workbench.conversation import ToolCall
from workbench.errors import DuplicateToolError, ToolDefinitionError

F = TypeVar("F", bound=Callable[..., Any])

TOOL_MARK = "__workbench_tool__"
"""Attribute ``@tool`` sets on a function: a dict with the ``name`` and ``timeout`` it was given."""

DEFAULT_TIMEOUT_S = 30.0
ENTRY_POINT_GROUP = "workbench.tools"
PATH_VARIABLE = "WORKBENCH_TOOLS_PATH"
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


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
    """

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    source: str
    timeout: float | None = None

    def schema(self) -> dict[str, Any]:
        """Return the OpenAI-style tool dict that ``apply_chat_template(tools=...)`` takes."""
        function = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class LoadError:
    """A file, entry point or tool that could not be loaded; every other tool still loads.

    Attributes:
        source: The file, folder or entry point.
        message: What went wrong and how to fix it.
    """

    source: str
    message: str


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
    where = loading.describe_location(func)
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
        source=source or loading.describe_source(func),
        timeout=timeout if timeout is not None else options.get("timeout"),
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
            f"The schema for {loading.describe_location(func)} needs a string 'name' and 'description', "
            'as in {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}.'
        )
    parameters = inner.get("parameters") or {"type": "object", "properties": {}}
    return _checked_spec(
        name=name,
        description=inner["description"],
        parameters=dict(parameters),
        function=func,
        source=source or loading.describe_source(func),
        timeout=timeout,
    )


def _checked_spec(**fields: Any) -> ToolSpec:
    spec = ToolSpec(**fields)
    if not callable(spec.function):
        raise ToolDefinitionError(
            f"Tool {spec.name!r} from {spec.source}: {spec.function!r} is not callable."
        )
    if not _VALID_NAME.match(spec.name):
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


class ToolRegistry:
    """The tools a session can call, and the load errors met while collecting them.

    The registry can be shared between conversations: switching tools on and off is per conversation,
    by passing ``enabled`` (a set of names, None for all) to :meth:`schemas` and :meth:`call`.
    """

    def __init__(self, *, default_timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.default_timeout = default_timeout
        self.errors: list[LoadError] = []
        self._specs: dict[str, ToolSpec] = {}
        # What was loaded, in order, so reload() can do it again from scratch.
        self._steps: list[tuple[str, Any]] = []

    # --- looking up ----------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> ToolSpec | None:
        """Return the tool called ``name``, or None."""
        return self._specs.get(name)

    def names(self) -> list[str]:
        """Return the tool names in the order they were loaded."""
        return list(self._specs)

    def specs(self) -> list[ToolSpec]:
        """Return every tool in the order they were loaded."""
        return list(self._specs.values())

    def schemas(self, enabled: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Return the tool dicts for ``apply_chat_template(tools=...)``, only the enabled ones if given."""
        allowed = None if enabled is None else set(enabled)
        return [s.schema() for s in self._specs.values() if allowed is None or s.name in allowed]

    # --- loading ---------------------------------------------------------------------------------------
    def add(self, tool: Callable[..., Any] | ToolSpec, *, source: str | None = None) -> ToolSpec:
        """Register a function (``@tool`` or not) or a spec, and return its spec.

        Raises:
            ToolDefinitionError: If no schema can be built from the function.
            DuplicateToolError: If another tool already has its name.
        """
        spec = tool if isinstance(tool, ToolSpec) else spec_from_function(tool, source=source)
        self._register(spec)
        self._steps.append(("spec", spec))
        return spec

    def load_builtins(self) -> None:
        """Register the offline built-in tools (calculator, current time, random number, units)."""
        self._run(("builtins", None))

    def load_path(self, folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> None:
        """Register the ``@tool`` functions of every ``*.py`` file in each folder, or of one ``.py`` file."""
        if isinstance(folders, str | os.PathLike):
            folders = [folders]
        for folder in folders:
            self._run(("path", Path(folder).expanduser()))

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register the tools named by installed packages' entry points (each a module or a function)."""
        self._run(("entry_points", group))

    def load_module(self, module: ModuleType, *, source: str | None = None) -> None:
        """Register every ``@tool`` function and :class:`ToolSpec` found at the top level of a module."""
        self._run(("module", (module, source or module.__name__)))

    @classmethod
    def from_env(
        cls,
        *,
        extra_paths: Iterable[str | os.PathLike[str]] = (),
        builtins: bool = True,
        entry_points: bool = True,
        default_timeout: float = DEFAULT_TIMEOUT_S,
    ) -> ToolRegistry:
        """Build a registry from the built-ins, folders and entry points.

        The folders are ``extra_paths`` (the CLI's ``--tools-path``), then those in ``WORKBENCH_TOOLS_PATH``
        (separated like PATH); then come the ``workbench.tools`` entry points.
        """
        registry = cls(default_timeout=default_timeout)
        if builtins:
            registry.load_builtins()
        env_paths = [p for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p.strip()]
        registry.load_path([*extra_paths, *env_paths])
        if entry_points:
            registry.load_entry_points()
        return registry

    def reload(self) -> None:
        """Load everything again from scratch: new and changed files are picked up, deleted ones vanish.

        Files in tool folders are read again; installed modules (built-ins, entry points) are not
        re-imported, but newly installed entry points are found.
        """
        fresh = ToolRegistry(default_timeout=self.default_timeout)
        for step in self._steps:
            fresh._run(step)
        # Swap whole objects so a conversation reading the registry meanwhile sees old or new, not half.
        self._specs, self.errors, self._steps = fresh._specs, fresh.errors, fresh._steps

    def _run(self, step: tuple[str, Any]) -> None:
        self._steps.append(step)
        kind, arg = step
        if kind == "spec":
            self._load_found([arg], arg.source)
        elif kind == "builtins":
            from tools import builtins

            self._load_found(loading.tools_in_module(builtins), "builtin")
        elif kind == "module":
            module, source = arg
            self._load_found(loading.tools_in_module(module), source)
        elif kind == "path":
            for source, found in loading.tools_in_folder(arg):
                self._load_found(found, source)
        elif kind == "entry_points":
            for source, found in loading.tools_from_entry_points(arg):
                self._load_found(found, source)

    def _load_found(self, found: list[Any] | Exception, source: str) -> None:
        if isinstance(found, Exception):
            self.errors.append(LoadError(source, str(found)))
            return
        for obj in found:
            try:
                spec = obj if isinstance(obj, ToolSpec) else spec_from_function(obj, source=source)
                self._register(spec)
            except (ToolDefinitionError, DuplicateToolError) as exc:
                self.errors.append(LoadError(source, str(exc)))

    def _register(self, spec: ToolSpec) -> None:
        existing = self._specs.get(spec.name)
        if existing is not None and existing.function is spec.function:
            return  # the same function reached twice, e.g. a file importing a built-in
        if existing is not None:
            raise DuplicateToolError(
                f"Two tools are named {spec.name!r}: one from {existing.source} and one from {spec.source}. "
                f"Only the first was loaded; rename the other, for example with @tool(name='{spec.name}_2')."
            )
        self._specs[spec.name] = spec

    # --- calling ---------------------------------------------------------------------------------------
    def call(
        self, call: ToolCall, *, enabled: Iterable[str] | None = None, timeout: float | None = None
    ) -> ToolResult:
        """Validate and run one call; never raises: every failure is a result with ``error=True``.

        Args:
            call: The model's call.
            enabled: Names switched on in this conversation; None means all.
            timeout: Seconds for tools that set no timeout of their own (default: the registry's).
        """
        return call_tool(
            self._specs,
            call,
            enabled=None if enabled is None else set(enabled),
            timeout=timeout or self.default_timeout,
        )
