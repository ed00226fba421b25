"""What one OpenAI-compatible server accepts, learned as it answers, for the rest of the session.

Servers differ from OpenAI in small ways that break Tool and Code modes: llama-cpp-python's server
refuses ``response_format: json_schema`` and an assistant message whose ``content`` is null; Ollama
ignores ``tool_choice``; vLLM without a tool parser refuses ``tools``. A :class:`ServerProfile` holds,
per loaded remote model, which ways of forcing a call or a JSON answer work (:data:`FORCED_STEPS`,
tried in order),
whether ``tools`` may go out with free replies and whether null content is taken. Each is learned from
the first answer that shows it, once, and shown in the sidebar as one line
(``this server: tools ✓, json_schema ✗ → json_object``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: The ways of forcing a call, most native first: ``tools`` + ``tool_choice``; ``response_format`` with a
#: JSON schema; ``response_format: json_object`` with the schema in the system prompt; plain text in the
#: dialect's call format, read back and validated.
FORCED_STEPS = ("tools", "json_schema", "json_object", "text")

# What each forced step sends, as servers name it in their error messages.
_STEP_WORDS: dict[str, tuple[str, ...]] = {
    "tools": ("tool_choice", "tools", "tool"),
    "json_schema": ("response_format", "json_schema"),
    "json_object": ("response_format", "json_object"),
    "text": (),
}


def names_any(exc: BaseException, words: tuple[str, ...]) -> bool:
    """Whether a server's error (a 4xx or 5xx) names one of ``words`` (what was sent that it refused)."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or not 400 <= status < 600 or not words:
        return False
    text = f"{getattr(exc, 'body', '')} {getattr(exc, 'message', '')} {exc}".lower()
    return any(word in text for word in words)


def step_refused(exc: BaseException, step: str) -> bool:
    """Whether the server's error refuses what ``step`` sends (so the next step should be tried)."""
    return names_any(exc, _STEP_WORDS[step])


@dataclass
class ServerProfile:
    """What a server was seen to accept (None: not known yet). Shared by every request to it; thread-safe.

    Attributes:
        seen: What each step of :data:`FORCED_STEPS` was seen to do: True (worked), False (refused, or
            answered without a usable call). A refused step is not tried again; ``text`` always is.
        tools: Whether ``tools`` go out with free replies (False once refused).
        null_content: Whether an assistant message with calls may have ``"content": null``.
        output_images: Whether tool and code outputs' images may be sent (False once the model refused
            them: a text-only model then gets their notes, not an error in every Code turn).
    """

    seen: dict[str, bool] = field(default_factory=dict)
    tools: bool | None = None
    null_content: bool | None = None
    output_images: bool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def steps(self, *, calls: bool = True) -> list[str]:
        """The steps still worth trying, in order (without ``tools`` for JSON that is not a call)."""
        wanted = FORCED_STEPS if calls else FORCED_STEPS[1:]
        return [step for step in wanted if step == "text" or self.seen.get(step) is not False]

    def worked(self, step: str) -> None:
        """Remember that ``step`` gave a good answer."""
        with self._lock:
            self.seen[step] = True

    def failed(self, step: str) -> None:
        """Remember that ``step`` was refused or gave nothing usable: it is not tried again."""
        with self._lock:
            if step != "text":
                self.seen[step] = False

    def summary(self) -> str:
        """One line for the sidebar, e.g. ``this server: tools ✓, json_schema ✗ → json_object``; "" if nothing is known."""
        parts = [f"{step} {'✓' if self.seen[step] else '✗'}" for step in FORCED_STEPS if step in self.seen]
        line = ", ".join(parts)
        refused = [step for step in FORCED_STEPS if self.seen.get(step) is False]
        if refused:
            after = FORCED_STEPS.index(refused[-1])
            fallback = next(s for s in FORCED_STEPS[after + 1 :] if self.seen.get(s) is not False)
            if self.seen.get(fallback) is not True:
                line += f" → {fallback}"
        if self.null_content is False:
            line += ("; " if line else "") + 'null content ✗ → ""'
        if self.output_images is False:
            line += ("; " if line else "") + "output images ✗"
        return f"this server: {line}" if line else ""

    def to_dict(self) -> dict[str, Any]:
        """What was learned, as plain data (``ask --json`` and tests)."""
        return {"seen": dict(self.seen), "tools": self.tools, "null_content": self.null_content}
