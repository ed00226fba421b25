"""Tools the model can call: write one with ``from tools import tool``; a ToolRegistry loads and calls them.

Modules: :mod:`tools.spec` (``@tool``, :class:`ToolSpec`, schemas; the leaf), :mod:`tools.loading`
(finding tools in files and entry points), :mod:`tools.calling` (running one call),
:mod:`tools.registry` (:class:`ToolRegistry`), :mod:`tools.builtins` (the offline built-ins) and
:mod:`tools.errors`. ``docs/tools.md`` is the user guide. The package depends only on
``workbench.errors`` and ``workbench.messages``; transformers loads when a schema is first built.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from tools.calling import CallControl, ToolResult, truncate_for_model
from tools.registry import LoadError, ToolRegistry
from tools.spec import ToolSpec, tool, tool_from_schema

__all__ = [
    "CallControl",
    "LoadError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "default_registry",
    "tool",
    "tool_from_schema",
    "truncate_for_model",
]


def default_registry(
    extra_paths: Iterable[str | os.PathLike[str]] = (), *, wait: bool = True
) -> ToolRegistry:
    """Return a new registry with the built-ins, ``extra_paths``, ``WORKBENCH_TOOLS_PATH`` and entry points.

    Each call loads afresh; share one per process (``st.cache_resource``) and call ``reload()`` on it.
    With ``wait=False`` it returns at once and the tools load in the background (``registry.loading``,
    ``registry.loading_file``, ``registry.wait()``).
    """
    return ToolRegistry.from_env(extra_paths=extra_paths, wait=wait)
