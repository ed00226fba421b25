"""The one error tree of Workbench.

Every error a user can hit derives from :class:`WorkbenchError` and its message says what went wrong
and what to do next. Pages and the CLI catch ``WorkbenchError`` and show ``str(error)``; anything
else is a bug.
"""

from __future__ import annotations


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


# --- conversations ------------------------------------------------------------------------------
class TranscriptError(WorkbenchError):
    """A transcript (JSON) is malformed."""


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


# --- kernels ------------------------------------------------------------------------------------
class KernelError(WorkbenchError):
    """Base of code-execution errors."""


class KernelStartError(KernelError):
    """A kernel could not be started (sandbox missing, ipykernel broken)."""


class KernelDiedError(KernelError):
    """The kernel died; its state is lost."""


class KernelLimitError(KernelError):
    """Too many kernels are running at once."""


class WorkdirPathError(KernelError):
    """A path points outside the session's work folder."""
