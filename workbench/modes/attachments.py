"""Documents in the tool and code loops: a question's sources, the prompt with them, files into the folder.

The chat loop sends its question with its sources once; the tool and code loops send the conversation
again each round, so they choose the sources when a turn starts and put the question with its sources
in place of the question in every prompt of that turn (the history keeps the question as typed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workbench.messages import Message

if TYPE_CHECKING:
    from workbench.chat_model import ChatModel
    from workbench.documents import AttachedDocuments
    from workbench.documents.context import Retriever, Source
    from workbench.models.generation import SamplingSettings
    from workbench.modes.code_workspace import Workspace

Question = tuple[str, str]
"""(the question's message id, the text the model reads: the question with its sources)."""


def find_sources(
    model: ChatModel,
    settings: SamplingSettings,
    thread: list[Message],
    retriever: Retriever | None,
    tools: list[dict[str, Any]] | None = None,
) -> tuple[Question | None, list[Source]]:
    """The sources of the question that ends ``thread``, and the text that replaces it (None: none)."""
    from workbench.documents.context import with_sources  # numpy and the parsers, only when used

    asked, sources = with_sources(model, settings, thread, retriever, tools)
    if not sources:
        return None, []
    return (thread[-1].id, asked[-1].content), sources


def with_question(messages: list[Message], question: Question | None) -> list[Message]:
    """``messages`` with the question replaced by its text with sources."""
    if question is None:
        return messages
    question_id, text = question
    return [replace(m, content=text) if m.id == question_id else m for m in messages]


def keep_sources(message: Message, sources: list[Source]) -> None:
    """Save the sources with the reply that read them (``metadata["sources"]``)."""
    if sources:
        message.metadata["sources"] = [source.to_dict() for source in sources]


def attached_line(attached: AttachedDocuments | None) -> str:
    """The system prompt's line naming the attached files (empty when there are none)."""
    names = [file.name for file in attached.listing()] if attached is not None else []
    if not names:
        return ""
    return f"The user attached these documents; they are in the current folder: {', '.join(names)}."


def place_attached(workspace: Workspace, attached: AttachedDocuments | None) -> list[str]:
    """Put the attached files that the work folder lacks into it; return their names.

    A file already there by that name is left as it is (the code may have changed it).

    Raises:
        WorkdirFullError: If there is no room for a file (those before it are placed).
        DocumentError: If the saved files cannot be read.
    """
    listing = attached.listing() if attached is not None else []
    if attached is None or not listing:
        return []
    present = {info.name for info in workspace.files()} if workspace.kernel_started else set()
    placed = []
    for file in listing:
        data = None if file.name in present else attached.content(file.name)
        if data is not None:
            workspace.upload(file.name, data)
            placed.append(file.name)
    return placed
