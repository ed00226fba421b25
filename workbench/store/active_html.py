"""Finding active HTML in imported text: what a viewer that renders HTML would run.

An import is refused when a title or a message holds, outside Markdown code, an element that runs or
loads code (``<script>``, ``<iframe>``, ``<svg>``, ``<style>``, ...), an event handler (``on...=``), or
a link to a scheme that runs code (``javascript:``, ``vbscript:``, ``data:text/html``, an SVG data
URL...). Workbench itself shows message text with raw HTML off; this check is for the other viewers
an export may meet.

The standard library's HTML tokenizer reads the text, entities decoded as a browser decodes them, not
patterns. Code is left out where it is certainly code to a Markdown renderer (:func:`outside_code`).
Where readings may differ, the check takes the one that finds more: a comment's text is read as HTML
too (``<!-->`` ends a comment in a browser), a start tag is also read with ``/`` as a space
(``<img/src=x/onerror=...>``), and ``<![CDATA[`` sections are refused. Everything runs in linear time
(the tokenizer is fed only what it reads linearly: see :func:`_read`), so a hostile import cannot
stall the check.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ACTIVE_TAGS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "meta", "link", "base",
        "form", "svg", "math", "style", "portal", "fencedframe", "noscript", "noembed", "noframes",
        "xmp", "plaintext", "template", "import",
    }
)  # fmt: skip
"""Elements that run code, load documents or styles, or that parsers read differently (mXSS)."""

URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "data", "xlink:href", "poster", "background", "lowsrc",
        "dynsrc", "codebase", "cite", "longdesc", "ping", "manifest", "icon", "archive", "classid",
        "usemap", "srcset",
    }
)  # fmt: skip
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:")
_SAFE_DATA = re.compile(r"data:image/(?:png|jpeg|jpg|gif|webp|avif|bmp|x-icon)[;,]")
_HIDDEN = re.compile(r"[\x00-\x20]")  # browsers drop tabs and newlines inside a URL, and trim the rest
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # a tab inside a scheme is dropped by browsers too
_CODE_IN_STYLE = re.compile(r"expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding", re.I)
_SCHEME_IN_TEXT = re.compile(
    r"\b(?:java|vb|live)script:"
    r"|\bdata:\s*(?:text/html|application/xhtml\+xml|image/svg\+xml|text/xml|application/xml"
    r"|text/(?:java|ecma)script|application/(?:x-)?(?:java|ecma)script)",
    re.IGNORECASE,
)
_TAG_START = re.compile(r"<[A-Za-z/!?]")  # where a tag, a comment or an autolink can begin
_FENCE = re.compile(r"(`{3,}|~{3,})(.*)")
_BACKTICKS = re.compile(r"`+")
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# HTML blocks that a blank line does not end (CommonMark's kinds 1-5), with what ends them.
_HTML_BLOCK_ENDS = {"<script": "</script>", "<pre": "</pre>", "<style": "</style>",
                    "<textarea": "</textarea>", "<!--": "-->", "<?": "?>", "<!": ">"}  # fmt: skip


def find_active_html(text: str) -> str | None:
    """Return the first piece of active HTML in ``text`` outside Markdown code, or None."""
    if "<" not in text and "&" not in text and not re.search("script|data", text, re.IGNORECASE):
        return None  # nothing that could start a tag, an entity or a dangerous scheme
    live = outside_code(text)
    found = find_in_html(live)
    if found:
        return found
    decoded = _CONTROL.sub("", html.unescape(_MARKDOWN_ESCAPE.sub(r"\1", live)))
    match = _SCHEME_IN_TEXT.search(decoded)
    return match.group(0) if match else None


def find_in_html(text: str) -> str | None:
    """Return the first active piece of an HTML fragment (no Markdown), or None."""
    finder = _ActiveHTMLFinder()
    _read(finder, text)
    return finder.found


def dangerous_url(value: str) -> bool:
    """Whether a URL runs code when followed or loaded (``javascript:``, a non-image ``data:`` URL...)."""
    url = _HIDDEN.sub("", value).lower()
    if url.startswith(_SCRIPT_SCHEMES):
        return True
    return url.startswith("data:") and not _SAFE_DATA.match(url)


def outside_code(text: str) -> str:
    """Return ``text`` with its Markdown code blanked out, for what is certainly code to a renderer.

    Code here is a fenced block whose fence starts a line (at column 0, so no list or quote holds
    it), up to its closing fence or the end, and a code span within one line that no tag around it
    could hold. Anything a renderer might read otherwise (a fence inside an HTML block, an indented
    block, a span across lines) stays: the check then reads it as live, the safe side. Linear time.
    """
    out: list[str] = []
    fence: tuple[str, int] | None = None
    html_end: str | None = None  # in an HTML block: what ends it ("" for a blank line)
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if fence is not None:
            out.append("")
            mark = stripped.rstrip(" \t")
            if indent <= 3 and len(mark) >= fence[1] and mark == fence[0] * len(mark):
                fence = None
            continue
        if html_end is not None:
            out.append(line)
            if html_end and html_end in line.lower():
                html_end = ""  # ended; stay in it to the next blank line, to be safe
            elif not html_end and not line.strip():
                html_end = None
            continue
        if indent <= 3 and _TAG_START.match(stripped):
            lowered = stripped.lower()
            start = next((key for key in _HTML_BLOCK_ENDS if lowered.startswith(key)), None)
            end = _HTML_BLOCK_ENDS[start] if start else ""
            html_end = "" if end and end in lowered[len(start or "") :] else end
            out.append(line)
            continue
        opened = _FENCE.match(line)
        if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
            fence = (opened.group(1)[0], len(opened.group(1)))
            out.append("")
            continue
        out.append(_blank_code_spans(line))
    return "\n".join(out)


def _blank_code_spans(line: str) -> str:
    """Blank the code spans of one line: a backtick run closed by a run of the same length."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(line)]
    by_length: dict[int, list[int]] = {}
    for number, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(number)
    taken: dict[int, int] = {}  # per length: how many runs of it are behind us
    chars = list(line)
    position = 0
    for start, end in runs:
        length = end - start
        taken[length] = taken.get(length, 0) + 1
        if start < position:
            continue  # inside a span already blanked
        before = line[position:start]
        escaped = start > 0 and line[start - 1] == "\\"
        in_tag = before.rfind("<") > before.rfind(">") and _TAG_START.search(before[before.rfind("<") :])
        if escaped or in_tag:
            continue
        same = by_length[length]
        if taken[length] >= len(same):
            continue  # no later run of this length: literal backticks
        close_end = runs[same[taken[length]]][1]
        chars[start:close_end] = " " * (close_end - start)
        position = close_end
    return "".join(chars)


def _read(finder: HTMLParser, text: str) -> None:
    """Feed ``text`` to the tokenizer in a form it reads in linear time, as a browser would read it.

    Text after the last ``>`` cannot hold a complete tag (a browser drops a tag cut by the end), and
    a comment left open would make the standard tokenizer search again from every ``<!--``: it is
    closed where it opens (its text is then read as HTML: the safe side).
    """
    cut = text.rfind(">")
    if cut < 0:
        return
    text = text[: cut + 1]
    last_close = text.rfind("-->")
    tail = text[last_close + 3 :] if last_close >= 0 else text
    if "<!--" in tail:
        text = text[: len(text) - len(tail)] + tail.replace("<!--", "<!---->")
    if "<![" in text:  # a marked section (CDATA): a bogus comment to a browser, a crash to html.parser
        assert isinstance(finder, _ActiveHTMLFinder)
        finder.found = finder.found or "<!["
        return
    try:
        finder.feed(text)
        finder.close()
    except (AssertionError, ValueError, RecursionError):  # markup the tokenizer cannot read: refuse it
        assert isinstance(finder, _ActiveHTMLFinder)
        finder.found = finder.found or "unreadable markup"


class _ActiveHTMLFinder(HTMLParser):
    """Reads HTML as a browser's tokenizer does and keeps the first active piece in :attr:`found`."""

    def __init__(self, *, depth: int = 0, handlers_only: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.found: str | None = None
        self._depth = depth
        self._handlers_only = handlers_only

    def _flag(self, piece: str) -> None:
        if self.found is None:
            self.found = piece

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or f"<{tag}>"
        if self._handlers_only:
            handler = next((name for name, _ in attrs if name.startswith("on") and len(name) > 2), None)
            if handler:
                self._flag(f"{handler}=")
            return
        if tag in ACTIVE_TAGS:
            self._flag(f"<{tag}")
            return
        if _dangerous_scheme_name(tag):  # <javascript:alert(1)>, an autolink
            self._flag(raw)
            return
        for name, value in attrs:
            value = value or ""
            if (name.startswith("on") and len(name) > 2) or name == "srcdoc":
                self._flag(f"{name}=")
            elif name == "style" and _CODE_IN_STYLE.search(value):
                self._flag(f"style={value}")
            elif _HIDDEN.sub("", value).lower().startswith(_SCRIPT_SCHEMES) or (
                name in URL_ATTRIBUTES and dangerous_url(value)
            ):
                self._flag(f"{name}={value}")
            if self.found:
                return
        if "/" in raw:  # lenient renderers split attributes at "/": look for event handlers that way too
            again = _ActiveHTMLFinder(depth=self._depth + 1, handlers_only=True)
            _read(again, raw.replace("/", " "))
            if again.found:
                self._flag(again.found)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ACTIVE_TAGS:
            self._flag(f"</{tag}")

    def handle_comment(self, data: str) -> None:
        # Browsers end a comment earlier than this tokenizer may (<!-->, --!>): read its text as HTML.
        if self._depth < 3:
            inner = _ActiveHTMLFinder(depth=self._depth + 1)
            _read(inner, data)
            if inner.found:
                self._flag(inner.found)

    def unknown_decl(self, data: str) -> None:
        self._flag(f"<![{data[:20]}")  # <![CDATA[ is a bogus comment to a browser, ending at the first >


def _dangerous_scheme_name(tag: str) -> bool:
    return ":" in tag and dangerous_url(tag)
