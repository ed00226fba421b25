"""Errors of the conversation store; all belong to Workbench's one error tree."""

from __future__ import annotations

from workbench.errors import TranscriptError, WorkbenchError


class StoreError(WorkbenchError):
    """The conversation database cannot be opened or used."""


class StoreVersionError(StoreError):
    """The database was written by a newer Workbench than this one."""


class ConversationNotFoundError(StoreError):
    """No (live) conversation has the given id."""


class ConversationConflictError(StoreError):
    """The saved conversation changed under a writer (another tab or process wrote to it)."""


class ImportRefusedError(TranscriptError):
    """An import was refused (malformed, too large or hostile); nothing was changed."""
