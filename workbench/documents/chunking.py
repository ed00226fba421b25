"""Cut a document's sections into chunks of about N tokens that overlap, each keeping its location.

Text is cut at sentence ends and line breaks first (Chinese 。！？ too), a piece still too long at
words, and a word (or a run of Chinese characters) still too long at characters; the pieces are
measured with the embedder's tokenizer and packed greedily. A chunk never spans two pages or slides,
so each cites one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from workbench.documents.model import Document

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 48

_SENTENCE = re.compile(r"[^\n.!?。！？；;]*(?:[.!?。！？；;]+|\n+|$)")
_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Chunk:
    """A passage of a document.

    Attributes:
        document: The file's name.
        location: ``page 3``, ``slide 2``, or empty.
        text: The passage.
        index: Its position among the document's chunks.
    """

    document: str
    location: str
    text: str
    index: int

    @property
    def source(self) -> str:
        """How a citation names it: ``report.pdf, page 3``."""
        return f"{self.document}, {self.location}" if self.location else self.document


def split_pieces(text: str, count_tokens: Callable[[str], int], limit: int) -> list[tuple[str, int]]:
    """Cut ``text`` into pieces of at most ``limit`` tokens each; return (piece, tokens) pairs."""
    pieces: list[tuple[str, int]] = []
    for sentence in _SENTENCE.findall(text):
        if not sentence:
            continue
        tokens = count_tokens(sentence)
        if tokens <= limit:
            pieces.append((sentence, tokens))
            continue
        for word in _WORD.findall(sentence):
            tokens = count_tokens(word)
            if tokens <= limit:
                pieces.append((word, tokens))
                continue
            step = max(1, len(word) * limit // max(tokens, 1))  # characters per piece, about
            for start in range(0, len(word), step):
                part = word[start : start + step]
                pieces.append((part, count_tokens(part)))
    return pieces


def chunk_document(
    document: Document,
    count_tokens: Callable[[str], int],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """Cut ``document`` into chunks of at most ``chunk_tokens`` tokens.

    Each chunk repeats about ``overlap_tokens`` tokens of the one before (within a page or slide).
    """
    if overlap_tokens >= chunk_tokens:
        raise ValueError("the overlap must be smaller than the chunk")
    chunks: list[Chunk] = []
    for section in document.sections:
        pieces = split_pieces(section.text, count_tokens, chunk_tokens - overlap_tokens)
        current: list[tuple[str, int]] = []
        size = 0
        fresh = False  # whether the current chunk holds pieces the last chunk did not
        for piece in pieces:
            if current and size + piece[1] > chunk_tokens * 3 // 4:  # near the limit: measure for real
                size = count_tokens("".join(p for p, _ in current) + piece[0]) - piece[1]
            if current and size + piece[1] > chunk_tokens:
                text = "".join(p for p, _ in current).strip()
                chunks.append(Chunk(document.name, section.location, text, len(chunks)))
                kept: list[tuple[str, int]] = []
                kept_size = 0
                for earlier in reversed(current):  # the tail of this chunk starts the next
                    if kept_size + earlier[1] > overlap_tokens:
                        break
                    kept.insert(0, earlier)
                    kept_size += earlier[1]
                current, size = kept, kept_size
            current.append(piece)
            size += piece[1]
            fresh = True
        if current and fresh:
            text = "".join(p for p, _ in current).strip()
            if text:
                chunks.append(Chunk(document.name, section.location, text, len(chunks)))
    return chunks
