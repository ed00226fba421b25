"""Markdown from imports, models and tools: images become links (nothing fetched), code stays as written."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from workbench.safe_markdown import ZERO_WIDTH_SPACE, escape_markdown, images_as_links

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def rendered(markdown: str) -> list[tuple[str, str]]:
    """(kind, url) of every image and link a CommonMark renderer makes of ``markdown``."""
    found = []
    stack = list(PARSER.parse(markdown))
    while stack:
        token = stack.pop()
        stack.extend(token.children or [])
        if token.type == "image":
            found.append(("image", str(token.attrGet("src"))))
        elif token.type == "link_open":
            found.append(("link", str(token.attrGet("href"))))
    return found


HOSTILE = [
    "![x](https://images.example.com/a.png)",
    "![](https://images.example.com/a.png)",
    'before ![alt *text*](https://images.example.com/a.png "title") after',
    "![x][ref]\n\n[ref]: https://images.example.com/a.png",
    "![ref]\n\n[ref]: https://images.example.com/a.png",
    "![ref][]\n\n[ref]: https://images.example.com/a.png",
    "[![badge](https://images.example.com/b.svg)](https://example.com)",
    "\\\\![x](https://images.example.com/a.png)",  # an escaped backslash, then a real image
    "- item\n\n  ![x](https://images.example.com/a.png)",
    "> quoted ![x](https://images.example.com/a.png)",
    "| a | b |\n| - | - |\n| ![x](https://images.example.com/a.png) | c |",
    # Fences that are no fences: a backtick in the info string; inside an HTML block; in a list item that ends.
    "```a`b\n![x](https://images.example.com/a.png)\n```",
    "<pre>\n```\n</pre>\n![x](https://images.example.com/a.png)",
    "<div>\n```\n</div>\n\n![x](https://images.example.com/a.png)",
    "- ```\n  code\n![x](https://images.example.com/a.png)",
    "`code` ![x](https://images.example.com/a.png) `more`",
    "line one\r![x](https://images.example.com/a.png)\r\n",
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_no_image_is_left_and_each_becomes_a_link(markdown: str) -> None:
    assert any(kind == "image" for kind, _ in rendered(markdown)), "the case must hold an image to begin with"
    safe = images_as_links(markdown)
    shown = rendered(safe)
    assert not [url for kind, url in shown if kind == "image"], safe
    assert ("link", "https://images.example.com/a.png") in shown or "b.svg" in safe


def test_an_empty_alt_text_becomes_a_visible_link() -> None:
    safe = images_as_links("![](https://images.example.com/a.png)")
    assert safe == f"!{ZERO_WIDTH_SPACE}[image](https://images.example.com/a.png)"


@pytest.mark.parametrize(
    "markdown",
    [
        "```rust\nlet v = vec![1, 2];\n```",
        "~~~\n![x](https://images.example.com/a.png)\n~~~",
        "    indented ![x](https://images.example.com/a.png)",
        "plain text, an escaped \\![x](not an image)",
        "no images at all: [a link](https://example.com)",
    ],
)
def test_code_blocks_and_text_without_images_stay_as_written(markdown: str) -> None:
    assert images_as_links(markdown) == markdown


def test_an_image_in_a_code_span_changes_invisibly() -> None:
    safe = images_as_links("write `![alt](url)` for an image")
    assert safe.replace(ZERO_WIDTH_SPACE, "") == "write `![alt](url)` for an image"


@pytest.mark.parametrize(
    "text",
    ["![x](https://images.example.com/a.png)", "**bold** `c` [l](u) $x$ ~~s~~", "a\\b<c>", "snake_case_name"],
)
def test_escaped_text_shows_as_itself(text: str) -> None:
    tokens = PARSER.parseInline(escape_markdown(text))[0].children or []
    assert [t.type for t in tokens] == ["text"]
    assert tokens[0].content == text
