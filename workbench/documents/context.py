"""What the model reads when documents are attached: numbered sources, then the question.

Documents that fit the room left in the model's context go in whole (page by page, each page a
source); longer ones are searched and the best chunks go in, as many as fit. The reply cites sources
as ``[1]``; :class:`Source` records what each number was (file, page or slide, passage), saved with the
reply so that a page can show the passage under the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from workbench.documents.index import Hit
from workbench.messages import Message, Role

if TYPE_CHECKING:
    from workbench.chat_model import ChatModel
    from workbench.models.generation import SamplingSettings

DEFAULT_TOP_K = 5
SOURCES_MARGIN_TOKENS = 64
"""Tokens kept free besides the reply when sources are fitted into the context."""
INSTRUCTIONS = (
    "Answer the question from the sources below. After each sentence that uses a source, cite it by "
    "its number in brackets, like [1]. If the sources do not hold the answer, say so."
)


class Retriever(Protocol):
    """Where a conversation's sources come from: its attached documents, or a knowledge base."""

    def __len__(self) -> int:
        """How many documents it holds (none: questions go without sources)."""
        ...

    def sections(self) -> list[tuple[str, str, str]]:
        """(file, location, text) of every page, when all may go in whole; [] to always search."""
        ...

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages most similar to ``query``, best first."""
        ...


@dataclass(frozen=True)
class Source:
    """One numbered source given to the model.

    Attributes:
        number: What the answer cites it as (``[number]``).
        document: The file's name.
        location: ``page 3``, ``slide 2``, or empty.
        text: The passage the model read.
    """

    number: int
    document: str
    location: str
    text: str

    @property
    def label(self) -> str:
        """``report.pdf, page 3``."""
        return f"{self.document}, {self.location}" if self.location else self.document

    def to_dict(self) -> dict[str, Any]:
        """As saved in the reply's ``metadata["sources"]``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Source | None:
        """Read one back; None if it is not a source (bad saved data shows as missing)."""
        try:
            return cls(int(data["number"]), str(data["document"]), str(data["location"]), str(data["text"]))
        except (KeyError, TypeError, ValueError):
            return None


def sources_of(metadata: dict[str, Any]) -> list[Source]:
    """The sources saved in a reply's metadata."""
    found = [Source.from_dict(item) for item in metadata.get("sources") or [] if isinstance(item, dict)]
    return [source for source in found if source is not None]


def select_sources(
    question: str,
    index: Retriever,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    top_k: int = DEFAULT_TOP_K,
) -> tuple[list[Source], bool]:
    """The sources for ``question``: every page if all fit ``budget_tokens``, else the best chunks.

    Returns:
        The sources, numbered from 1, and whether the documents went in whole.
    """
    sections = index.sections()
    whole_tokens = sum(count_tokens(text) + 16 for _, _, text in sections)
    if sections and whole_tokens <= budget_tokens:
        return [Source(n, name, where, text) for n, (name, where, text) in enumerate(sections, start=1)], True
    sources: list[Source] = []
    used = 0
    for hit in index.search(question, top_k):
        cost = count_tokens(hit.chunk.text) + 16
        if used + cost > budget_tokens:
            break
        used += cost
        sources.append(Source(len(sources) + 1, hit.chunk.document, hit.chunk.location, hit.chunk.text))
    return sources, False


def render_question(question: str, sources: list[Source]) -> str:
    """The user message the model reads: instructions, the numbered sources, the question."""
    if not sources:
        return question
    listed = "\n\n".join(f"[{source.number}] {source.label}:\n{source.text}" for source in sources)
    return f"{INSTRUCTIONS}\n\nSources:\n{listed}\n\nQuestion: {question}"


def with_sources(
    model: ChatModel,
    settings: SamplingSettings,
    messages: list[Message],
    retriever: Retriever | None,
    tools: list[dict[str, Any]] | None = None,
) -> tuple[list[Message], list[Source]]:
    """``messages`` with the last one, a user's question, sent with its sources (what the model reads).

    The sources fill the context left after the messages, the reply (``max_new_tokens``) and a margin.
    Unchanged, with no sources, when there is no retriever, it holds no documents, or the last message
    is not the user's. The history keeps the question as typed; only the model reads the sources.
    ``tools``, the schemas shown to the model, count against the room.
    """
    if retriever is None or not messages or messages[-1].role is not Role.USER or not len(retriever):
        return messages, []
    backend = model.backend
    used = backend.count_tokens(model.dialect.render(messages, tools=tools or None))
    room = backend.context_length - used - settings.max_new_tokens - SOURCES_MARGIN_TOKENS
    question = messages[-1].content
    sources, _whole = select_sources(question, retriever, max(0, room), backend.count_tokens)
    asked = replace(messages[-1], content=render_question(question, sources))
    return [*messages[:-1], asked], sources
