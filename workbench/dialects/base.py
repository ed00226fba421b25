"""The dialect interface: a conversation -> the model's prompt, the model's output -> a message.

One module per model family. A dialect knows the prompt format only; it never loads or runs a model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from workbench.messages import Message, Role


class Dialect(ABC):
    """Renders conversations for one model family and parses what the model writes back."""

    #: A short name shown in the UI.
    name: str = "base"
    #: Strings that end the assistant's turn (besides the tokenizer's end-of-sequence token).
    stop_strings: tuple[str, ...] = ()
    #: Text that opens one tool call written as JSON (``"<tool_call>\n"``), or None when this format's
    #: calls are not JSON. The tool loop writes it, decodes the call under a JSON schema, then appends
    #: :attr:`tool_call_close`; :meth:`parse` must read the result back.
    tool_call_open: str | None = None
    #: Text that closes one JSON tool call.
    tool_call_close: str = ""
    #: What a reply that is a code-interpreter turn starts with, before its python fence (ChatGLM3
    #: writes a metadata line ``interpreter`` after its assistant token; other formats nothing).
    code_turn_header: str = ""

    @abstractmethod
    def render(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Return the prompt text for a conversation.

        Args:
            messages: The conversation, system message first if there is one.
            tools: OpenAI-style tool schemas the model may call, or None.
            add_generation_prompt: End with the header of a new assistant message.
        """

    def parse(self, text: str) -> Message:
        """Turn the model's raw output for one turn into an assistant message.

        Dialects that know tool calls fill ``tool_calls`` and record unreadable calls with
        :func:`workbench.dialects.calls.assistant_message`. The base dialect keeps the text as it is
        (minus any stop string left at the end).
        """
        return Message(Role.ASSISTANT, strip_stop_strings(text, self.stop_strings).strip())


def strip_stop_strings(text: str, stops: tuple[str, ...]) -> str:
    """Cut ``text`` at the first stop string it contains."""
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]
