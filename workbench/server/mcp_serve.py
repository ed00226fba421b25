"""The tools ``serve`` offers (``GET /v1/tools`` and ``/mcp``): built-ins, folders, MCP servers, ``--tools``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from tools import ToolRegistry


class ChosenTools(ToolRegistry):
    """The tools ``--tools`` names, taken from a full registry (kept alive: its tool host runs the file tools)."""

    def __init__(self, parent: ToolRegistry, names: set[str]) -> None:
        super().__init__(default_timeout=parent.default_timeout)
        self.parent = parent
        for spec in parent.specs():
            if spec.name in names:
                self.add(spec)


def serve_registry(
    tools_paths: Sequence[str], mcp_config: str | None, only_tools: str | None, err: TextIO
) -> ToolRegistry:
    """The registry ``serve`` offers: the built-ins, ``tools_paths``, entry points and MCP servers.

    Everything loads in the background, so the server starts at once; with ``only_tools``
    (``--tools a,b``) loading is waited for and only those tools are offered.

    Raises:
        ToolDefinitionError: If ``--tools`` names a tool that did not load.
    """
    args = argparse.Namespace(mcp_config=mcp_config, only_tools=only_tools, yes=False)
    if not only_tools:
        return ToolRegistry.from_env(extra_paths=list(tools_paths), wait=False, mcp_config=mcp_config)
    from workbench.cli.ask_tool import load_tools
    from workbench.cli.options import selected_tools

    registry = load_tools(list(tools_paths), err, args)
    wanted = selected_tools(args, registry.names())
    return registry if wanted is None else ChosenTools(registry, wanted)
