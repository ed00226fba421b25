"""Knowledge bases: named collections of documents, built once, searched from any conversation.

They live in the conversations' database (revision 0006): documents and chunks in tables, each
knowledge base's vectors in a sqlite-vec ``vec0`` table of its own. See :class:`KnowledgeBases`.
"""

from __future__ import annotations

from workbench.knowledge.attached import ConversationDocuments
from workbench.knowledge.bases import (
    AddResult,
    KnowledgeBaseError,
    KnowledgeBaseInfo,
    KnowledgeBaseRetriever,
    KnowledgeBases,
)

__all__ = [
    "AddResult",
    "ConversationDocuments",
    "KnowledgeBaseError",
    "KnowledgeBaseInfo",
    "KnowledgeBaseRetriever",
    "KnowledgeBases",
]
