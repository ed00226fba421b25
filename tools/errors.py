"""The tool errors that a failed call reports, as finer children of :mod:`workbench.errors`.

A :class:`~tools.calling.ToolResult` names one of these in ``error_type`` so the UI and transcripts can
tell an unknown tool from a timeout without parsing the message.
"""

from __future__ import annotations

from workbench.errors import ToolCallError, ToolExecutionError


class UnknownToolError(ToolCallError):
    """The model called a tool that is not registered."""


class ToolDisabledError(ToolCallError):
    """The model called a tool that the user switched off in this conversation."""


class InvalidArgumentsError(ToolCallError):
    """The arguments are not a JSON object or do not match the tool's schema."""


class ToolRaisedError(ToolExecutionError):
    """The tool's function raised an exception."""


class ToolTimeoutError(ToolExecutionError):
    """The tool ran past its time limit and was abandoned."""


class ToolCancelledError(ToolExecutionError):
    """The user stopped the call while it ran (an MCP server was told to cancel it)."""


class CallSkippedError(ToolCallError):
    """The user chose Skip for a call that needed confirmation, so it did not run."""
