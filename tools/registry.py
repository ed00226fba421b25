"""The :class:`ToolRegistry`: the tools a session can call, where they came from, and the calls to them.

A registry is filled from the built-ins, from ``*.py`` files in folders (``WORKBENCH_TOOLS_PATH``) and
from the ``workbench.tools`` entry points; a file or tool that fails becomes a :class:`LoadError` in
``registry.errors`` while everything else still loads. How a tool is written (``@tool``, schemas) is in
:mod:`tools.spec`; how files and entry points are found, in :mod:`tools.loading`.

The files of tool folders are imported and called in a separate process, the tool host
(:mod:`tools.host`), so that a file that exits, crashes or hangs cannot take the app down; the
built-ins, modules and entry points (installed code) run in process. Loading can happen in the
background (``wait=False``): :attr:`ToolRegistry.loading` says whether it is still going on.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tools import builtins, loading
from tools.calling import CallControl, ToolResult, call_tool
from tools.host import DEFAULT_IMPORT_TIMEOUT_S, HostedTool, ToolHost
from tools.spec import ToolSpec, spec_from_function
from workbench.errors import DuplicateToolError, ToolDefinitionError
from workbench.messages import ToolCall

if TYPE_CHECKING:
    from tools.mcp_client import McpTools

DEFAULT_TIMEOUT_S = 30.0
ENTRY_POINT_GROUP = "workbench.tools"
PATH_VARIABLE = "WORKBENCH_TOOLS_PATH"
IMPORT_TIMEOUT_VARIABLE = "WORKBENCH_TOOL_IMPORT_TIMEOUT_S"


@dataclass(frozen=True)
class LoadError:
    """A file, entry point or tool that could not be loaded; every other tool still loads.

    Attributes:
        source: The file, folder or entry point.
        message: What went wrong and how to fix it.
    """

    source: str
    message: str


class StepKind(Enum):
    """What one loading step of a registry read; :meth:`ToolRegistry.reload` replays the steps in order."""

    SPEC = "spec"  # one spec given to add(); the argument is the ToolSpec
    BUILTINS = "builtins"  # the built-in tools; no argument
    MODULE = "module"  # the tools of a module; the argument is (module, source)
    PATH = "path"  # the files of a folder, or one file; the argument is a Path
    ENTRY_POINTS = "entry_points"  # the entry points of a group; the argument is the group name


LoadStep = tuple[StepKind, Any]
"""One loading step: its kind and its argument."""


class ToolRegistry:
    """The tools a session can call, and the load errors met while collecting them.

    The registry can be shared between conversations: switching tools on and off is per conversation,
    by passing ``enabled`` (a set of names, None for all) to :meth:`schemas` and :meth:`call`.
    """

    def __init__(
        self,
        *,
        default_timeout: float = DEFAULT_TIMEOUT_S,
        import_timeout: float = DEFAULT_IMPORT_TIMEOUT_S,
    ) -> None:
        self.default_timeout = default_timeout
        self.import_timeout = import_timeout
        self.errors: list[LoadError] = []
        self._specs: dict[str, ToolSpec] = {}
        # What was loaded, in order, so reload() can do it again from scratch.
        self._steps: list[LoadStep] = []
        self._host: ToolHost | None = None
        self._host_finalizer: weakref.finalize[[], ToolRegistry] | None = None
        self._loader: threading.Thread | None = None
        self._loading_file: str | None = None
        self._swap_lock = threading.Lock()
        #: The MCP servers whose tools are shown beside the Python tools (see :meth:`attach_mcp`).
        self.mcp: McpTools | None = None

    # --- background loading --------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        """Whether tools are still being loaded in the background."""
        loader = self._loader
        return (loader is not None and loader.is_alive()) or (self.mcp is not None and self.mcp.connecting)

    @property
    def loading_file(self) -> str | None:
        """The file being imported now, while :attr:`loading`."""
        return self._loading_file if self.loading else None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until background loading is over; return whether it is."""
        loader = self._loader
        if loader is not None:
            loader.join(timeout)
        if self.mcp is not None:
            self.mcp.wait(timeout)
        return not self.loading

    # --- looking up ----------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __len__(self) -> int:
        return len(self._all())

    def get(self, name: str) -> ToolSpec | None:
        """Return the tool called ``name``, or None."""
        return self._all().get(name)

    def names(self) -> list[str]:
        """Return the tool names in the order they were loaded (MCP servers' tools last)."""
        return list(self._all())

    def specs(self) -> list[ToolSpec]:
        """Return every tool in the order they were loaded (MCP servers' tools last)."""
        return list(self._all().values())

    def attach_mcp(self, servers: McpTools) -> None:
        """Show the tools of ``servers``' ready MCP servers beside the Python tools, from now on."""
        self.mcp = servers
        self.errors = [*self.errors, *(LoadError(s, m) for s, m in servers.errors)]

    def _all(self) -> dict[str, ToolSpec]:
        """The Python tools, then the ready MCP servers' tools (renamed around the Python ones)."""
        if self.mcp is None:
            return self._specs
        return {**self._specs, **self.mcp.specs(self._specs.keys())}

    def schemas(self, enabled: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Return the tool dicts for ``apply_chat_template(tools=...)``, only the enabled ones if given."""
        allowed = None if enabled is None else set(enabled)
        return [s.schema() for s in self._all().values() if allowed is None or s.name in allowed]

    # --- loading ---------------------------------------------------------------------------------------
    def add(self, tool: Callable[..., Any] | ToolSpec, *, source: str | None = None) -> ToolSpec:
        """Register a function (``@tool`` or not) or a spec, and return its spec.

        Raises:
            ToolDefinitionError: If no schema can be built from the function.
            DuplicateToolError: If another tool already has its name.
        """
        spec = tool if isinstance(tool, ToolSpec) else spec_from_function(tool, source=source)
        self._register(spec)
        self._steps.append((StepKind.SPEC, spec))
        return spec

    def load_builtins(self) -> None:
        """Register the offline built-in tools (calculator, current time, random number, units)."""
        self._run((StepKind.BUILTINS, None))

    def load_path(self, folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> None:
        """Register the ``@tool`` functions of every ``*.py`` file in each folder, or of one ``.py`` file."""
        if isinstance(folders, str | os.PathLike):
            folders = [folders]
        for folder in folders:
            self._run((StepKind.PATH, Path(folder).expanduser()))

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register the tools named by installed packages' entry points (each a module or a function)."""
        self._run((StepKind.ENTRY_POINTS, group))

    def load_module(self, module: ModuleType, *, source: str | None = None) -> None:
        """Register every ``@tool`` function and :class:`ToolSpec` found at the top level of a module."""
        self._run((StepKind.MODULE, (module, source or module.__name__)))

    @classmethod
    def from_env(
        cls,
        *,
        extra_paths: Iterable[str | os.PathLike[str]] = (),
        builtins: bool = True,
        entry_points: bool = True,
        default_timeout: float = DEFAULT_TIMEOUT_S,
        wait: bool = True,
        mcp_config: str | os.PathLike[str] | None = None,
        mcp: bool = True,
    ) -> ToolRegistry:
        """Build a registry from the built-ins, folders and entry points.

        The folders are ``extra_paths`` (the CLI's ``--tools-path``), then those in ``WORKBENCH_TOOLS_PATH``
        (separated like PATH); then come the ``workbench.tools`` entry points. With ``wait=False`` all of
        it loads in the background (see :attr:`loading`) and the registry is empty until then.
        A file may take ``WORKBENCH_TOOL_IMPORT_TIMEOUT_S`` seconds to import (default 20).
        With ``mcp``, the MCP servers of ``mcp_config`` (else ``WORKBENCH_MCP_CONFIG``) connect in the background.
        """
        registry = cls(default_timeout=default_timeout, import_timeout=_import_timeout())
        if mcp:
            _attach_mcp_config(registry, mcp_config)
        steps: list[LoadStep] = [(StepKind.BUILTINS, None)] if builtins else []
        env_paths = [p for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p.strip()]
        steps += [(StepKind.PATH, Path(p).expanduser()) for p in [*extra_paths, *env_paths]]
        if entry_points:
            steps.append((StepKind.ENTRY_POINTS, ENTRY_POINT_GROUP))
        if wait:
            for step in steps:
                registry._run(step)
        else:
            registry._steps = steps  # what reload() replays, even before the first load is over
            registry._load_in_background(steps)
        return registry

    def reload(self, *, wait: bool = True) -> None:
        """Load everything again from scratch: new and changed files are picked up, deleted ones vanish.

        Files in tool folders are read again (in a fresh tool host); installed modules (built-ins,
        entry points) are not re-imported, but newly installed entry points are found. With
        ``wait=False`` the current tools stay callable until the new ones are ready.
        """
        if wait:
            self._swap_in(self._fresh(list(self._steps)))
        else:
            self._load_in_background(list(self._steps))

    def _fresh(self, steps: list[LoadStep]) -> ToolRegistry:
        fresh = ToolRegistry(default_timeout=self.default_timeout, import_timeout=self.import_timeout)
        fresh._progress = self._set_loading_file
        for step in steps:
            fresh._run(step)
        return fresh

    def _set_loading_file(self, file: str | None) -> None:
        self._loading_file = file

    def _load_in_background(self, steps: list[LoadStep]) -> None:
        previous = self._loader

        def work() -> None:
            if previous is not None:
                previous.join()  # one load at a time, in the order asked
            self._swap_in(self._fresh(steps))

        self._loader = threading.Thread(target=work, name="tool-loader", daemon=True)
        self._loader.start()

    def _swap_in(self, fresh: ToolRegistry) -> None:
        # Swap whole objects so a conversation reading the registry meanwhile sees old or new, not half.
        with self._swap_lock:
            old_host = self._host
            if self._host_finalizer is not None:
                self._host_finalizer.detach()
            if fresh._host_finalizer is not None:
                fresh._host_finalizer.detach()
            self._host, self._host_finalizer = None, None
            if fresh._host is not None:
                self._adopt(fresh._host)
            self._specs, self.errors, self._steps = fresh._specs, fresh.errors, fresh._steps
            if self.mcp is not None:
                self.errors = [*self.errors, *(LoadError(s, m) for s, m in self.mcp.errors)]
            fresh._host = None
        if old_host is not None:
            # Closing waits for a call in progress on the old host: do it aside.
            threading.Thread(target=old_host.close, name="tool-host-close", daemon=True).start()

    def _run(self, step: LoadStep) -> None:
        self._steps.append(step)
        kind, arg = step
        if kind is StepKind.SPEC:
            self._load_found([arg], arg.source)
        elif kind is StepKind.BUILTINS:
            self._load_found(loading.tools_in_module(builtins), "builtin")
        elif kind is StepKind.MODULE:
            module, source = arg
            self._load_found(loading.tools_in_module(module), source)
        elif kind is StepKind.PATH:
            self._load_hosted(arg)
        elif kind is StepKind.ENTRY_POINTS:
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

    _progress: Callable[[str | None], None] | None = None

    def _load_hosted(self, folder: Path) -> None:
        """Import a folder's files (or one file) in the tool host and register what it found."""
        if not (folder.is_dir() or folder.is_file()):
            for source, found in loading.tools_in_folder(folder):  # the error saying it does not exist
                self._load_found(found, source)
            return
        if folder.is_dir() and not any(not p.name.startswith(".") for p in folder.glob("*.py")):
            return  # nothing to import: no host needed
        host = self._host or self._adopt(
            ToolHost(import_timeout=self.import_timeout, on_progress=self._progress)
        )
        try:
            files = host.load(folder)
        except ToolDefinitionError as exc:
            self.errors.append(LoadError(str(folder), str(exc)))
            return
        for file in files:
            self.errors.extend(LoadError(file.source, message) for message in file.errors)
            for hosted in file.tools:
                spec = ToolSpec(
                    name=hosted["name"],
                    description=hosted["description"],
                    parameters=hosted["parameters"],
                    function=HostedTool(host, file.source, hosted["name"], hosted["key"]),
                    source=hosted["source"],
                    timeout=hosted["timeout"],
                    returns=hosted.get("returns"),
                )
                try:
                    self._register(spec)
                except DuplicateToolError as exc:
                    self.errors.append(LoadError(file.source, str(exc)))

    def _adopt(self, host: ToolHost) -> ToolHost:
        """Own ``host``: it is closed when this registry is dropped."""
        self._host = host
        self._host_finalizer = weakref.finalize(self, host.close)
        return host

    def close(self) -> None:
        """Stop this registry's tool host (its file tools can then no longer be called)."""
        if self._host is not None:
            self._host.close()

    def _register(self, spec: ToolSpec) -> None:
        existing = self._specs.get(spec.name)
        if existing is not None and _same_function(existing.function, spec.function):
            return  # the same function reached twice, e.g. a file importing a built-in
        if existing is not None:
            raise DuplicateToolError(
                f"Two tools are named {spec.name!r}: one from {existing.source} and one from {spec.source}. "
                f"Only the first was loaded; rename the other, for example with @tool(name='{spec.name}_2')."
            )
        self._specs[spec.name] = spec

    # --- calling ---------------------------------------------------------------------------------------
    def call(
        self,
        call: ToolCall,
        *,
        enabled: Iterable[str] | None = None,
        timeout: float | None = None,
        control: CallControl | None = None,
    ) -> ToolResult:
        """Validate and run one call; never raises: every failure is a result with ``error=True``.

        Args:
            call: The model's call.
            enabled: Names switched on in this conversation; None means all.
            timeout: Seconds for tools that set no timeout of their own (default: the registry's).
            control: Progress reports, cancellation and confirmation for this call (MCP tools use them).
        """
        return call_tool(
            self._all(),
            call,
            enabled=None if enabled is None else set(enabled),
            timeout=timeout or self.default_timeout,
            control=control,
        )

    def needs_confirmation(self, name: str) -> str | None:
        """The MCP server whose ``confirm`` setting asks the user before each call to ``name``, else None."""
        spec = self.get(name)
        function = spec.function if spec is not None else None
        if function is None or getattr(function, "needs_confirmation", False) is not True:
            return None
        return str(function.server.name)  # type: ignore[attr-defined]


def _attach_mcp_config(registry: ToolRegistry, explicit: str | os.PathLike[str] | None) -> None:
    from tools.mcp_config import config_path

    path = config_path(explicit)
    if path is not None:
        from tools.mcp_client import McpTools

        registry.attach_mcp(McpTools.from_file(path))


def _same_function(first: Any, second: Any) -> bool:
    """Whether two tools run the same function (a file re-exporting a built-in is not a duplicate)."""
    if first is second:
        return True
    keys = [f.key if isinstance(f, HostedTool) else _key(f) for f in (first, second)]
    return keys[0] == keys[1] and not keys[0].startswith(loading.USER_MODULE_PREFIX)


def _key(func: Any) -> str:
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


def _import_timeout() -> float:
    raw = os.environ.get(IMPORT_TIMEOUT_VARIABLE, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_IMPORT_TIMEOUT_S
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ToolDefinitionError(
            f"{IMPORT_TIMEOUT_VARIABLE}={raw!r} is not a positive number of seconds; fix or unset it."
        )
    return value
