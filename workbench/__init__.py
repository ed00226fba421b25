"""Workbench: a local LLM workbench. The core, importable without Streamlit.

Quick start::

    from workbench import load_model
    bot = load_model()                      # the embedded SmolLM2-135M-Instruct
    reply, history = bot.chat("What is the capital of France?")
    reply, history = bot.chat("And of Italy?", history)
"""

from workbench.api import load_model
from workbench.chat_model import ChatModel
from workbench.conversation import Message, Role, ToolCall
from workbench.errors import WorkbenchError

__all__ = ["ChatModel", "Message", "Role", "ToolCall", "WorkbenchError", "load_model"]
