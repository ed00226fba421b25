"""Markdown from outside (imports, models, tools) made safe to show: no image the browser would fetch.

A Markdown image (``![alt](https://host/x.png)``, or ``![alt][ref]`` with ``[ref]: URL``) makes the
browser fetch its URL the moment the text is shown: a conversation imported from elsewhere, a model's
answer or a tool's output could so report to any host that the page was opened, from where, and when.
:func:`images_as_links` turns every image into a plain link (shown, not fetched: the user decides).
:func:`escape_markdown` makes any text (a tool's name, a model's) show as itself where Streamlit reads
Markdown (labels, captions).

How: an image needs ``!`` right before ``[``; a zero-width space between them leaves a ``!`` and a
link. It is done everywhere (in code spans too, where it does not show) except in code blocks, where
nothing is an image and the text must stay as written (Rust's ``vec![1]``). Which lines are code blocks
is asked of a CommonMark parser (markdown-it-py), not guessed: a fence inside an HTML block, say, is
no fence, and the text after it is Markdown again. Nothing else is parsed, so no inline construct can
hide an image from the rewrite.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

ZERO_WIDTH_SPACE = "\u200b"
_IMAGE = re.compile(r"(?<!\\)((?:\\\\)*)!\[(\]?)")
# What starts inline Markdown that links, fetches, formats as code or math, or hides text: escaped.
# Not "_": in a name (a tool's, a file's) it is mostly inside a word, where it formats nothing.
_INLINE_SYNTAX = frozenset("\\`*[]!<>~$")
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def images_as_links(markdown: str) -> str:
    r"""``markdown`` with every image shown as a link to it instead (``![]`` gets the text "image").

    Line ends become ``\n`` (as the parser reads them); nothing else changes outside images.
    """
    if "![" not in markdown:
        return markdown
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    code: set[int] = set()
    for token in _PARSER.parse("\n".join(lines)):
        if token.type in ("fence", "code_block") and token.map is not None:
            code.update(range(*token.map))
    return "\n".join(
        line if number in code else _IMAGE.sub(_as_link, line) for number, line in enumerate(lines)
    )


def _as_link(match: re.Match[str]) -> str:
    backslashes, empty = match.group(1), match.group(2)
    return f"{backslashes}!{ZERO_WIDTH_SPACE}[" + ("image]" if empty else "")


def escape_markdown(text: str) -> str:
    """``text`` (a name) shown as itself where Streamlit reads Markdown: no link, image, code or HTML.

    Backslash-escapes the characters that open inline Markdown (``_`` aside: see ``_INLINE_SYNTAX``).
    """
    return "".join("\\" + char if char in _INLINE_SYNTAX else char for char in text)
