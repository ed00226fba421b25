"""Read pdf, docx, pptx, html, md and txt files into :class:`~workbench.documents.model.Document` s.

Parsers: pypdf, python-docx, python-pptx, BeautifulSoup + html2text; all run offline, none loads a
model. A file is checked before any parser sees it: its size, that its content is what its extension
says (a ``.pdf`` that is a Word file is refused, naming both), and, for the zip-based formats, what it
unpacks to (a zip bomb is refused before anything is unpacked). Every refusal is a
:class:`~workbench.documents.errors.DocumentError` naming the file and saying what to do; a parser's own
exception on a damaged file becomes one too.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

from workbench.documents.errors import DocumentCancelledError, DocumentError
from workbench.documents.model import Document, Section

Progress = Callable[[int, int], None]
"""Called with (sections done, sections in all) while a file is parsed: pages, slides."""

KINDS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
}
"""The extensions accepted, and the kind each names."""

DEFAULT_MAX_MB = 50
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
"""What a docx or pptx may unpack to, in all (a zip bomb unpacks to far more)."""
MAX_ZIP_MEMBERS = 10_000

_DESCRIPTIONS = {
    "pdf": "a PDF",
    "docx": "a Word document (docx)",
    "pptx": "a PowerPoint presentation (pptx)",
    "zip": "a zip archive",
    "ole": "an old Office file (doc, ppt or xls)",
    "html": "an HTML page",
    "text": "plain text",
    "binary": "binary data",
}
_ACCEPTS = {
    "pdf": {"pdf"},
    "docx": {"docx"},
    "pptx": {"pptx"},
    "html": {"html", "text"},
    "md": {"text", "html"},
    "txt": {"text", "html"},
}
_HTML_START = re.compile(rb"<\s*(!doctype\s+html|html|head|body)\b", re.IGNORECASE)


def max_bytes() -> int:
    """The size limit of one file: ``WORKBENCH_MAX_DOCUMENT_MB`` megabytes, 50 by default."""
    try:
        megabytes = float(os.environ.get("WORKBENCH_MAX_DOCUMENT_MB", DEFAULT_MAX_MB))
    except ValueError:
        megabytes = DEFAULT_MAX_MB
    return int(megabytes * 1024 * 1024)


def read_document(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Document:
    """Read and parse the file at ``path`` (see :func:`parse_document`)."""
    path = Path(path)
    return parse_document(path.name, read_file(path), progress=progress, cancel=cancel)


def read_file(path: str | Path) -> bytes:
    """The bytes of the file at ``path``, refused before reading when over the size limit.

    Raises:
        DocumentError: If it cannot be read or is too big; the message names it.
    """
    path = Path(path)
    limit = max_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            raise _too_big(path.name, size, limit)
        return path.read_bytes()
    except OSError as exc:
        raise DocumentError(
            f"{path.name} could not be read ({exc.strerror or exc}); check the path."
        ) from exc


def parse_document(
    name: str,
    data: bytes,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Document:
    """Parse a file's bytes into its text, page by page or slide by slide.

    Args:
        name: The file's name; its extension says what it should be.
        data: Its content.
        progress: Told (done, total) after each page or slide.
        cancel: Set it to stop: :class:`DocumentCancelledError` is raised at the next page.

    Raises:
        DocumentError: If the file is too big, of another type than its extension says, encrypted,
            without text, a zip bomb, damaged or truncated; the message names the file.
    """
    name = Path(name).name or "the file"
    limit = max_bytes()
    if len(data) > limit:
        raise _too_big(name, len(data), limit)
    suffix = Path(name).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        accepted = ", ".join(sorted({k for k in KINDS.values()}))
        raise DocumentError(
            f"{name}: files of type {suffix or '(no extension)'} are not supported; attach {accepted}."
        )
    found = sniff(data)
    if found == "damaged-zip" and kind in ("docx", "pptx"):
        raise DocumentError(
            f"{name} is damaged or truncated: it is not a complete {kind} file. Save it again and attach it anew."
        )
    if found not in _ACCEPTS[kind]:
        raise DocumentError(
            f"{name} is not {_DESCRIPTIONS.get(kind, kind)}: its content is "
            f"{_DESCRIPTIONS.get(found, found)}. Give it the right extension, or attach the right file."
        )
    if kind in ("docx", "pptx"):
        _check_unpacked_size(name, data)
    parse = _PARSERS[kind]
    try:
        sections = parse(name, data, progress, cancel)
    except DocumentError:
        raise
    except Exception as exc:  # a hostile or damaged file makes parsers raise anything: name the file
        raise DocumentError(
            f"{name} could not be read as {_DESCRIPTIONS.get(kind, kind)} ({type(exc).__name__}: {exc}). "
            "It may be damaged; save it again and attach it anew."
        ) from exc
    if not any(section.text.strip() for section in sections):
        raise DocumentError(f"{name} holds no text.")
    return Document(name, kind, sections, hashlib.sha256(data).hexdigest(), len(data))


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the name says.

    One of ``pdf``, ``docx``, ``pptx``, ``zip``, ``damaged-zip``, ``ole``, ``html``, ``text``, ``binary``.
    """
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "damaged-zip"
        if "word/document.xml" in names:
            return "docx"
        if "ppt/presentation.xml" in names:
            return "pptx"
        return "zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if _decode(data) is None:
        return "binary"
    return "html" if _HTML_START.search(data[:4096]) else "text"


def _too_big(name: str, size: int, limit: int) -> DocumentError:
    return DocumentError(
        f"{name} is {size / 1024 / 1024:.1f} MB; the limit is {limit / 1024 / 1024:.0f} MB per file "
        "(WORKBENCH_MAX_DOCUMENT_MB). Split it, or raise the limit."
    )


def _check_unpacked_size(name: str, data: bytes) -> None:
    """Refuse a zip that unpacks to too much (a zip bomb) before any member is unpacked."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_ZIP_MEMBERS or unpacked > MAX_UNPACKED_BYTES:
        raise DocumentError(
            f"{name} would unpack to {unpacked / 1024 / 1024:,.0f} MB in {len(members):,} parts, more than "
            f"the {MAX_UNPACKED_BYTES // 1024 // 1024} MB a document may unpack to: it looks like a zip bomb "
            "and was not opened."
        )


def _decode(data: bytes) -> str | None:
    """The text of a text file: UTF-8 (with or without BOM), UTF-16 with a BOM, or GB18030; else None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _tick(cancel: threading.Event | None, progress: Progress | None, done: int, total: int) -> None:
    if cancel is not None and cancel.is_set():
        raise DocumentCancelledError("Reading the document was stopped; nothing of it was kept.")
    if progress is not None:
        progress(done, total)


def _pdf(name: str, data: bytes, progress: Progress | None, cancel: threading.Event | None) -> list[Section]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = bool(reader.decrypt(""))  # many PDFs are encrypted with an empty user password
        except Exception:  # an unsupported cipher is as closed as a wrong password
            opened = False
        if not opened:
            raise DocumentError(
                f"{name} is encrypted with a password. Open it, save or print it as a PDF without "
                "the password, and attach that."
            )
    total = len(reader.pages)
    sections = []
    _tick(cancel, progress, 0, total)
    for number, page in enumerate(reader.pages, start=1):
        sections.append(Section((page.extract_text() or "").strip(), f"page {number}"))
        _tick(cancel, progress, number, total)
    if not any(section.text for section in sections):
        raise DocumentError(
            f"{name} has no text layer; OCR is not supported. It is probably scanned: attach the "
            "original document, or a PDF made searchable by an OCR program (e.g. ocrmypdf)."
        )
    return sections


def _docx(name: str, data: bytes, progress: Progress | None, cancel: threading.Event | None) -> list[Section]:
    import docx

    _tick(cancel, progress, 0, 1)
    document = docx.Document(io.BytesIO(data))
    lines = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    _tick(cancel, progress, 1, 1)
    return [Section("\n".join(line for line in lines if line.strip()))]


def _pptx(name: str, data: bytes, progress: Progress | None, cancel: threading.Event | None) -> list[Section]:
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    sections = []
    _tick(cancel, progress, 0, len(slides))
    for number, slide in enumerate(slides, start=1):
        lines = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                lines.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    lines.append(" | ".join(cell.text for cell in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        sections.append(Section("\n".join(line for line in lines if line.strip()), f"slide {number}"))
        _tick(cancel, progress, number, len(slides))
    return sections


def _html(name: str, data: bytes, progress: Progress | None, cancel: threading.Event | None) -> list[Section]:
    import html2text
    from bs4 import BeautifulSoup

    _tick(cancel, progress, 0, 1)
    soup = BeautifulSoup(_decode(data) or "", "html.parser")
    for element in soup(["script", "style", "noscript", "template", "iframe", "object", "embed"]):
        element.decompose()
    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0  # no hard line wraps: chunks are cut by tokens
    text = converter.handle(str(soup)).strip()
    _tick(cancel, progress, 1, 1)
    return [Section(text)]


def _text(name: str, data: bytes, progress: Progress | None, cancel: threading.Event | None) -> list[Section]:
    _tick(cancel, progress, 0, 1)
    text = (_decode(data) or "").strip()
    _tick(cancel, progress, 1, 1)
    return [Section(text)]


_PARSERS: dict[str, Callable[[str, bytes, Progress | None, threading.Event | None], list[Section]]] = {
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    "html": _html,
    "md": _text,
    "txt": _text,
}
