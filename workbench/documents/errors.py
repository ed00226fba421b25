"""Errors of the documents package: each names the file and says what to do."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class DocumentError(WorkbenchError):
    """A document could not be read, parsed or indexed; nothing of it was kept."""


class DocumentCancelledError(DocumentError):
    """Parsing or indexing a document was cancelled (Stop); nothing of it was kept."""
