"""Workbench: a local LLM workbench. The core, importable without Streamlit.

Quick start::

    from workbench import load_model
    bot = load_model()                      # the embedded SmolLM2-135M-Instruct
    reply, history = bot.chat("What is the capital of France?")
    reply, history = bot.chat("And of Italy?", history)

Importing the package is cheap: the conversation types and errors load at once, while ``load_model`` and
``ChatModel`` load on first use (PEP 562), so ``import workbench`` never pulls in an engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.messages import Message, Role, ToolCall

if TYPE_CHECKING:
    from workbench.api import load_model
    from workbench.chat_model import ChatModel

_LAZY = {"load_model": "workbench.api", "ChatModel": "workbench.chat_model"}

__all__ = ["ChatModel", "Message", "Role", "ToolCall", "WorkbenchError", "load_model"]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
