"""Finding tools: in a module, in the ``*.py`` files of a folder, and through entry points.

Each finder returns what it found, or the error that stopped it, paired with the source, so the
registry can record the error and go on with the next file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.spec import ToolSpec, is_tool
from workbench.errors import ToolDefinitionError

USER_MODULE_PREFIX = "workbench_user_tools_"
"""The module names of imported tool files begin with this."""

Found = list[Any] | ToolDefinitionError
"""The tools of one source (functions and specs), or the error that stopped loading it."""


def tools_in_module(module: ModuleType) -> list[Any]:
    """Return the ``@tool`` functions and :class:`ToolSpec` objects at the top level of a module."""
    found: dict[int, Any] = {}
    for value in vars(module).values():
        if is_tool(value) or isinstance(value, ToolSpec):
            found.setdefault(id(value), value)
    return list(found.values())


def tools_in_folder(folder: Path) -> list[tuple[str, Found]]:
    """Import every ``*.py`` file of ``folder`` (or the one file it names) and return its tools, per file."""
    if folder.is_file() and folder.suffix == ".py":
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("."))
    else:
        return [
            (
                str(folder),
                ToolDefinitionError(
                    f"The tools folder {folder} does not exist; check WORKBENCH_TOOLS_PATH or --tools-path."
                ),
            )
        ]
    results: list[tuple[str, Found]] = []
    for path in files:
        try:
            results.append((str(path), tools_in_module(import_file(path))))
        except ToolDefinitionError as exc:
            results.append((str(path), exc))
    return results


def import_file(path: Path) -> ModuleType:
    """Import one file as its own module, under a name unique to its path.

    The file is compiled from its current text (no ``__pycache__``), so a reload always sees the latest
    edit, even one made within the same second.

    Raises:
        ToolDefinitionError: If the file cannot be read, compiled or run; the message gives the line.
    """
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"{USER_MODULE_PREFIX}{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ToolDefinitionError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    try:
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ToolDefinitionError(
            f"{path}, line {exc.lineno}: syntax error: {exc.msg}. Fix the file, then reload."
        ) from None
    except (OSError, ValueError) as exc:
        raise ToolDefinitionError(f"{path} cannot be read: {exc}.") from None
    # Registered in sys.modules because dataclasses and pickle look a class's module up there.
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        line = _line_in(path, exc)
        if isinstance(exc, ImportError):
            hint = "Install the missing package into Workbench's environment, or remove the import."
        else:
            hint = "Fix the file, then reload."
        raise ToolDefinitionError(
            f"{path}{line}: importing it raised {type(exc).__name__}: {exc}. {hint}"
        ) from None
    return module


def _line_in(path: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f", line {frames[-1].lineno}" if frames else ""


def tools_from_entry_points(group: str) -> list[tuple[str, Found]]:
    """Load each entry point of ``group``: a module (all its tools) or a single function or spec."""
    results: list[tuple[str, Found]] = []
    for entry in metadata.entry_points(group=group):
        source = f"entry point {entry.name} = {entry.value}"
        try:
            obj = entry.load()
        except Exception as exc:
            results.append(
                (
                    source,
                    ToolDefinitionError(
                        f"The {source} could not be loaded: {type(exc).__name__}: {exc}. "
                        "Reinstall the package that provides it, or fix its module."
                    ),
                )
            )
            continue
        if isinstance(obj, ModuleType):
            found = tools_in_module(obj)
            if not found:
                results.append(
                    (source, ToolDefinitionError(f"The {source} names a module with no @tool functions."))
                )
                continue
            results.append((source, found))
        elif callable(obj) or isinstance(obj, ToolSpec):
            results.append((source, [obj]))
        else:
            results.append(
                (source, ToolDefinitionError(f"The {source} must name a module or a function, not {obj!r}."))
            )
    return results
