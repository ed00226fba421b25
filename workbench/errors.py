"""The one error tree of Workbench.

Every error a user can hit derives from :class:`WorkbenchError` or, for code execution, from
:class:`kernel.errors.KernelError`, and its message says what went wrong and what to do next.

The ``kernel`` package is a library of its own: it imports nothing from Workbench, so its errors
cannot derive from :class:`WorkbenchError`. This module re-exports them (``workbench.errors.KernelError``
*is* ``kernel.errors.KernelError``) and names the pair :data:`USER_ERRORS`. Pages, the CLI and the
loops catch ``USER_ERRORS`` and show ``str(error)``; anything else is a bug. Workbench code raises
``KernelError`` itself for code-session problems (busy kernel, no pool), so one class covers both.

Importing this module is cheap: :mod:`kernel.errors` imports nothing.
"""

from __future__ import annotations

from kernel.errors import (
    KernelDiedError,
    KernelError,
    KernelGatewayError,
    KernelLimitError,
    KernelStartError,
    WorkdirFullError,
    WorkdirPathError,
)

__all__ = [
    "USER_ERRORS",
    "BranchError",
    "ChatTemplateError",
    "DownloadCancelled",
    "DuplicateToolError",
    "EmptyPromptError",
    "GenerationError",
    "KernelDiedError",
    "KernelError",
    "KernelGatewayError",
    "KernelLimitError",
    "KernelStartError",
    "ModelBusyError",
    "ModelDownloadError",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PromptError",
    "PromptTooLongError",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "TranscriptError",
    "WorkbenchError",
    "WorkdirFullError",
    "WorkdirPathError",
]


class WorkbenchError(Exception):
    """Base of every error Workbench raises on purpose."""


# --- models -------------------------------------------------------------------------------------
class ModelError(WorkbenchError):
    """A model could not be found, loaded or used."""


class ModelNotFoundError(ModelError):
    """The model path or name does not exist."""


class ModelLoadError(ModelError):
    """The model exists but could not be loaded (corrupt file, missing weights, bad options)."""


class ChatTemplateError(ModelError):
    """The model's tokenizer has no usable chat template."""


class GenerationError(ModelError):
    """Generation failed while running."""


class ModelDownloadError(ModelError):
    """A model could not be downloaded from the Hub (no network, gated, checksum, full disk, stopped)."""


class DownloadCancelled(ModelDownloadError):
    """The user stopped a download; a second start fetches what is missing."""


class ModelBusyError(ModelError):
    """Every generation slot is taken and the queue of waiting requests is full; retry shortly."""


class RemoteModelError(ModelError):
    """A remote OpenAI-compatible server could not be reached or answered badly (key, model, time-out)."""


class SettingsError(WorkbenchError):
    """A sampling setting is out of its range (temperature, top p, max new tokens, penalty, seed)."""


# --- prompts ------------------------------------------------------------------------------------
class PromptError(WorkbenchError):
    """The prompt or conversation cannot be sent to the model."""


class EmptyPromptError(PromptError):
    """The user's message is empty."""


class PromptTooLongError(PromptError):
    """The rendered prompt does not fit in the model's context window."""


class ImageInputError(PromptError):
    """The conversation holds images the model cannot read (a text-only model), or an unreadable image."""


# --- conversations ------------------------------------------------------------------------------
class TranscriptError(WorkbenchError):
    """A transcript (JSON) is malformed."""


class BranchError(WorkbenchError):
    """A branch operation (edit, regenerate, switch, fork, delete) names a message it cannot act on."""


# --- tools --------------------------------------------------------------------------------------
class ToolError(WorkbenchError):
    """Base of tool errors."""


class ToolDefinitionError(ToolError):
    """A tool's function, hints or docstring cannot be turned into a schema."""


class DuplicateToolError(ToolError):
    """Two tools share one name."""


class ToolCallError(ToolError):
    """The model's call is malformed: unknown tool, bad JSON, invalid arguments."""


class ToolExecutionError(ToolError):
    """The tool raised, timed out or returned something unusable."""


# --- kernels: defined in kernel/errors.py, re-exported above ------------------------------------------

USER_ERRORS: tuple[type[Exception], ...] = (WorkbenchError, KernelError)
"""Every error a user can hit: ``except USER_ERRORS as error: show(str(error))`` in pages and the CLI."""
