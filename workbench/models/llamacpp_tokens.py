"""Tokenizing a prompt on llama.cpp in pieces, so the time grows linearly with the prompt.

llama.cpp first cuts a text at every special token in it (``<|im_start|>``, ``<|im_end|>``, ...), then
tokenizes the pieces between; it finds each cut's place by walking its list of pieces from the start
(``std::distance`` on a ``forward_list`` in ``tokenizer_st_partition``), which is quadratic in the
number of special tokens: a request of 200,000 short messages kept a core busy for over 34 minutes.

Here the text is cut first, where llama.cpp cuts it too (right before a special token), into pieces of
at most :data:`SPECIALS_PER_PIECE` special tokens, and each piece is tokenized alone: the same tokens,
in time linear in the text. A cut is never made between whitespace and a special token that strips the whitespace
before it (``lstrip``).
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any

#: Special tokens per piece handed to llama.cpp (its cost grows with the square of this number).
SPECIALS_PER_PIECE = 256


class PieceTokenizer:
    """Tokenizes like ``llm.tokenize(data, add_bos=False, special=True)``, in pieces.

    Args:
        llm: The ``llama_cpp.Llama`` whose vocabulary to use.
    """

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._pattern: re.Pattern[bytes] | None = None
        self._lstrip: set[bytes] = set()
        self._ready = False
        self._lock = threading.Lock()

    def tokenize(self, data: bytes) -> list[int]:
        """Token ids of ``data``; special tokens written in it count as one each."""
        pattern = self._special_pattern()
        cuts = [0]
        if pattern is not None:
            seen = 0
            for match in pattern.finditer(data):
                seen += 1
                start = match.start()
                eats_space = match.group() in self._lstrip and data[start - 1 : start].isspace()
                if seen > SPECIALS_PER_PIECE and start > cuts[-1] and not eats_space:
                    cuts.append(start)
                    seen = 1
        cuts.append(len(data))
        tokens: list[int] = []
        for start, end in itertools.pairwise(cuts):
            tokens += self._llm.tokenize(data[start:end], add_bos=False, special=True)
        return tokens

    def _special_pattern(self) -> re.Pattern[bytes] | None:
        """A pattern of every token llama.cpp cuts at (control, user-defined, unknown), longest first."""
        with self._lock:
            if not self._ready:
                import llama_cpp

                vocab = self._llm._model.vocab
                kinds = (
                    llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
                    | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
                    | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
                )
                texts: set[bytes] = set()
                for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
                    attr = llama_cpp.llama_vocab_get_attr(vocab, token)
                    text = llama_cpp.llama_vocab_get_text(vocab, token) if attr & kinds else None
                    if text:
                        texts.add(text)
                        if attr & llama_cpp.LLAMA_TOKEN_ATTR_LSTRIP:
                            self._lstrip.add(text)
                if texts:
                    ordered = sorted(texts, key=len, reverse=True)
                    self._pattern = re.compile(b"|".join(re.escape(text) for text in ordered))
                self._ready = True
            return self._pattern


def control_token_texts(llm: Any) -> tuple[str, ...]:
    """The texts of the tokens llama.cpp parses only with ``special=True`` (control and unknown tokens)."""
    import llama_cpp

    vocab = llm._model.vocab
    kinds = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    texts: set[str] = set()
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        if llama_cpp.llama_vocab_get_attr(vocab, token) & kinds:
            text = llama_cpp.llama_vocab_get_text(vocab, token)
            if text:
                texts.add(text.decode("utf-8", errors="replace"))
    return tuple(sorted(texts, key=len, reverse=True))
