"""The import filter against a list of XSS vectors, and the harmless text and code it must keep."""

from __future__ import annotations

import json

import pytest

from workbench.store import ConversationStore, ImportRefusedError
from workbench.store.active_html import find_active_html

SVG_PAGE = "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"  # base64 of <svg onload=alert(1)>
HTML_PAGE = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="  # base64 of <script>alert(1)</script>

VECTORS = [
    # What the hostile try-out found missed.
    "<img/src=x/onerror=alert(1)>",
    '<img/src="x"/onerror=alert(1)>',
    f"[click](data:text/html;base64,{HTML_PAGE})",
    f'<a href="data:text/html;base64,{HTML_PAGE}">click</a>',
    # Scripts and elements that load or run code.
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//x.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<iframe src=//x.example>",
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">',
    f'<object data="data:text/html;base64,{HTML_PAGE}"></object>',
    "<embed src=//x.example/x.swf>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<link rel=stylesheet href=//x.example/x.css>",
    "<style>@import 'https://x.example/x.css';</style>",
    '<form action="https://x.example"><input name=p></form>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><img src=x onerror=alert(1)></template>",
    # Event handlers, however they are written.
    "<img src=x onerror=alert(1)>",
    "<img src=x ONERROR=alert(1)>",
    '<img src="x" onerror  =  "alert(1)">',
    "<img src=x\nonerror=alert(1)>",
    "<img src=x\tonerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    "<x/onclick=alert(1)>click</x>",
    "<marquee onstart=alert(1)>",
    # Links to schemes that run code, however they are spelled.
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<a xlink:href="javascript:alert(1)">x</a>',
    f'<a href="data:image/svg+xml;base64,{SVG_PAGE}">x</a>',
    '<div style="width: expression(alert(1))">',
    '<div style="background:url(javascript:alert(1))">',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](&#106;avascript:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](javascript\\:alert(1))",
    "[x](<java\tscript:alert(1)>)",
    "[x]: javascript:alert(1)\n\n[x]",
    "<javascript:alert(1)>",
    f"![x](data:image/svg+xml;base64,{SVG_PAGE})",
    "[x](data: text/html,<script>alert(1)</script>)",
    # Parser differentials: where a browser reads a live tag that a lenient tokenizer may not.
    "<!--><img src=x onerror=alert(1)>-->",
    "<!-- --!><img src=x onerror=alert(1)>-->",
    "<![CDATA[><img src=x onerror=alert(1)>]]>",
    # Code markers that are not code to a Markdown renderer, or not certainly (indented code is read
    # as live: a list item or a paragraph around it would make it text).
    "    <script>indented, in a list item or a paragraph this is live</script>",
    "- item\n  ```\n<img src=x onerror=alert(1)>\n  ```",  # the line at column 0 ends the item
    "<div>\n```\n<img src=x onerror=alert(1)>\n```\n</div>",  # a fence inside an HTML block
    "<script>\n\n```\nalert(1)\n```\n</script>",
    "`\n<div>\n<img src=x onerror=alert(1)>\n`",  # no code span across an HTML block
    '<a title="`"><img src=x onerror=alert(1)><b title="`">',  # the backticks are inside tags
    "a ~~~ <img src=x onerror=alert(1)> ~~~ b",
    "\\`<img src=x onerror=alert(1)>\\`",
    "```not closed on its line <img src=x onerror=alert(1)>``",
    "Some prose: ```html\n<script>alert(1)</script>\n```",  # a <script> line opens an HTML block
]

HARMLESS = [
    "Plain text with a < b and c > d, and 3 < 4.",
    "Use `<script>` tags carefully.",
    "```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```\nThat was a page.",
    "~~~\n<iframe src=x></iframe>\n~~~",
    "``<img src=x onerror=alert(1)>``",
    "A table:\n\n| a | b |\n| - | - |\n| <b>1</b> | <i>2</i> |",
    '<b>bold</b>, <em>em</em>, <a href="https://example.com/a/b?c=d">a link</a>, <br/>',
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="a dot">',
    "[docs](https://example.com/javascript-guide) and data: 5 rows; the script: ran.",
    "Entities: &lt;script&gt; is shown as text; &amp; too.",
    "An email <me@example.com> and a link <https://example.com/x>.",
    "The onerror handler is named onerror=, in prose.",
    "**Bold** and *italic* and ~~struck~~.",
]


@pytest.mark.parametrize("text", VECTORS)
def test_every_vector_is_found(text: str) -> None:
    assert find_active_html(text), text


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_and_code_pass(text: str) -> None:
    assert find_active_html(text) is None, find_active_html(text)


@pytest.mark.parametrize("text", VECTORS[:4])
def test_the_vectors_the_tryout_found_are_refused_on_import(sqlite_url: str, text: str) -> None:
    with ConversationStore.open(sqlite_url) as store:
        payload = {"title": "t", "messages": [{"role": "user", "content": text}]}
        with pytest.raises(ImportRefusedError, match="Conversation 1, message 1 holds active HTML"):
            store.import_json(json.dumps(payload))
        assert store.count() == 0


def test_a_vector_in_a_title_is_refused(sqlite_url: str) -> None:
    with ConversationStore.open(sqlite_url) as store:
        payload = {"title": "<img/src=x/onerror=alert(1)>", "messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(ImportRefusedError, match="title holds active HTML"):
            store.import_json(json.dumps(payload))
