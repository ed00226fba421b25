"""The tool host's own process: ``python -m tools.host_main``, started and spoken to by :mod:`tools.host`.

It imports the user's tool files and runs their calls, so that a file that exits, crashes, hangs or
eats memory takes down only this process. One JSON object per line on a private copy of stdin and
stdout (the real descriptors 0 and 1 are pointed elsewhere, so a tool's ``print`` or ``input`` cannot
garble the protocol). Requests:

- ``{"op": "load", "path": ..., "skip": [...], "schemas": bool}``: import the files of a folder (or
  one file), except those in ``skip``. Answers ``{"event": "importing", "file"}`` before each file,
  ``{"event": "file", "source", "tools", "errors"}`` after it, then ``{"event": "done"}``. With
  ``schemas`` false (a restart) the tools are only indexed, not described.
- ``{"op": "call", "source", "name", "arguments"}``: answers ``{"event": "result", "text"}`` or
  ``{"event": "raised", "type", "message"}``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import resource
from pathlib import Path
from typing import IO, Any

from tools.calling import result_to_text
from tools.loading import tools_in_folder
from tools.spec import TOOL_MARK, ToolSpec, spec_from_function
from workbench.errors import ToolDefinitionError

MEMORY_VARIABLE = "WORKBENCH_TOOL_MEMORY_MB"
DEFAULT_MEMORY_MB = 4096


def function_key(func: Any) -> str:
    """``module:qualname`` of a function: the same function reached from two files has one key."""
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


class Host:
    """The tools this process imported, by (source file, tool name)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.functions: dict[tuple[str, str], Any] = {}

    def send(self, message: dict[str, Any]) -> None:
        """Write one reply line."""
        self.out.write(json.dumps(message, default=str) + "\n")
        self.out.flush()

    def load(self, path: str, skip: list[str], schemas: bool) -> None:
        """Import the files of ``path`` but those in ``skip``, reporting each one's tools."""
        if schemas:
            _warm_schemas()  # slow the first time: before the first file, outside its time limit
        folder = Path(path)
        skipped = set(skip)
        if folder.is_dir():
            files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("."))
        else:
            files = [folder]
        for file in files:
            if str(file) in skipped:
                continue
            self.send({"event": "importing", "file": str(file)})
            for source, found in tools_in_folder(file):
                self._report(source, found, schemas)
        self.send({"event": "done"})

    def _report(self, source: str, found: list[Any] | ToolDefinitionError, schemas: bool) -> None:
        if isinstance(found, Exception):
            self.send({"event": "file", "source": source, "tools": [], "errors": [str(found)]})
            return
        tools: list[dict[str, Any]] = []
        errors: list[str] = []
        for obj in found:
            try:
                spec = obj if isinstance(obj, ToolSpec) else self._spec(obj, source, schemas)
            except ToolDefinitionError as exc:
                errors.append(str(exc))
                continue
            self.functions[(source, spec.name)] = spec.function
            tools.append(
                {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                    "source": spec.source,
                    "timeout": spec.timeout,
                    "returns": spec.returns,
                    "key": function_key(spec.function),
                }
            )
        self.send({"event": "file", "source": source, "tools": tools, "errors": errors})

    @staticmethod
    def _spec(func: Any, source: str, schemas: bool) -> ToolSpec:
        if schemas:
            return spec_from_function(func, source=source)
        options = getattr(func, TOOL_MARK, None) or {}
        name = options.get("name") or func.__name__
        return ToolSpec(name, "", {}, func, source, options.get("timeout"))

    def call(self, source: str, name: str, arguments: dict[str, Any]) -> None:
        """Run one tool and reply with its result as text, or what it raised."""
        func = self.functions.get((source, name))
        if func is None:
            self.send(
                {
                    "event": "raised",
                    "type": "LookupError",
                    "message": f"{source} no longer defines {name!r}; reload the tools.",
                }
            )
            return
        try:
            value = func(**arguments)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            text = result_to_text(value)
        except BaseException as exc:  # the tool's own error is the result; SystemExit included
            self.send({"event": "raised", "type": type(exc).__name__, "message": str(exc)})
            return
        self.send({"event": "result", "text": text})


def _warm_schemas() -> None:
    """Build one schema, so that transformers' first-call imports are done before any file's clock starts."""

    def sample(x: int) -> int:
        """Warm up.

        Args:
            x: A number.
        """
        return x

    spec_from_function(sample, source="warm-up")


def _limit_memory() -> None:
    raw = os.environ.get(MEMORY_VARIABLE, "").strip()
    megabytes = int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MEMORY_MB
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> None:
    """Serve requests until stdin closes (the app ended or let the host go)."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a tool reading stdin gets EOF, not our requests
    os.dup2(2, 1)  # a tool printing writes to the app's stderr, not into our replies
    _limit_memory()
    host = Host(replies)
    host.send({"event": "ready"})
    for line in requests:
        request = json.loads(line)
        if request["op"] == "load":
            host.load(request["path"], request.get("skip", []), bool(request.get("schemas", True)))
        elif request["op"] == "call":
            host.call(request["source"], request["name"], request.get("arguments") or {})


if __name__ == "__main__":
    main()
