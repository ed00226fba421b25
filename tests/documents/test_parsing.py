"""Parsing real pdf, docx, pptx, html, md and txt files, and every bad input of issue 26."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.documents import files
from workbench.documents import DocumentCancelledError, DocumentError, parse_document, read_document
from workbench.documents.parsing import sniff


def test_a_pdf_is_read_page_by_page_with_progress() -> None:
    seen: list[tuple[int, int]] = []
    document = parse_document(
        "report.pdf",
        files.pdf(["The turbine spins at 3000 rpm.", "Page two talks about oil.", "Third page."]),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert document.kind == "pdf" and len(document.sections) == 3
    assert "3000 rpm" in document.sections[0].text
    assert [s.location for s in document.sections] == ["page 1", "page 2", "page 3"]
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert len(document.sha256) == 64 and document.size > 0


def test_docx_pptx_html_md_txt() -> None:
    word = parse_document("notes.docx", files.word(["First paragraph.", "颐和园在北京。"], [["k", "v"]]))
    assert "颐和园在北京" in word.text and "k | v" in word.text
    deck = parse_document("deck.pptx", files.slides([("Intro", "Hello"), ("Plan", "Ship in May")]))
    assert [s.location for s in deck.sections] == ["slide 1", "slide 2"]
    assert "Ship in May" in deck.sections[1].text
    page = parse_document(
        "page.html",
        b"<html><head><script>alert(1)</script><style>p{}</style></head><body><h1>Title</h1>"
        b"<p>Some <b>bold</b> text</p></body></html>",
    )
    assert "Title" in page.text and "bold" in page.text and "alert" not in page.text
    assert parse_document("a.md", "# 标题\n正文".encode()).text == "# 标题\n正文"
    assert (
        parse_document("a.txt", "北京天气".encode("gb18030")).text == "北京天气"
    )  # a Chinese legacy encoding


def test_an_encrypted_pdf_is_refused_by_name() -> None:
    with pytest.raises(DocumentError, match=r"secret\.pdf is encrypted with a password"):
        parse_document("secret.pdf", files.encrypted_pdf())


def test_a_scanned_pdf_says_no_text_layer() -> None:
    with pytest.raises(DocumentError, match=r"scan\.pdf has no text layer; OCR is not supported"):
        parse_document("scan.pdf", files.scanned_pdf())


def test_a_docx_zip_bomb_is_refused_before_unpacking() -> None:
    bomb = files.zip_bomb_docx()
    assert len(bomb) < 2 * 1024 * 1024  # small on disk
    with pytest.raises(DocumentError, match=r"bomb\.docx would unpack to 21\d MB.*zip bomb"):
        parse_document("bomb.docx", bomb)


def test_a_file_over_the_limit_says_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_MAX_DOCUMENT_MB", "1")
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 400_000)  # 2 MB
    with pytest.raises(DocumentError, match=r"big\.txt is 1\.9 MB; the limit is 1 MB per file"):
        read_document(big)
    with pytest.raises(DocumentError, match=r"the limit is 1 MB"):
        parse_document("big.txt", big.read_bytes())
    monkeypatch.delenv("WORKBENCH_MAX_DOCUMENT_MB")
    with pytest.raises(DocumentError, match=r"the limit is 50 MB"):
        parse_document("huge.txt", b" " * (50 * 1024 * 1024 + 1))


def test_a_truncated_pptx_is_refused_by_name() -> None:
    whole = files.slides([("Intro", "Hello " * 200)])
    with pytest.raises(DocumentError, match=r"deck\.pptx is damaged or truncated"):
        parse_document("deck.pptx", whole[: len(whole) // 2])


@pytest.mark.parametrize(
    ("name", "make", "found"),
    [
        ("report.pdf", lambda: files.word(["hi"]), "a Word document"),
        ("report.docx", lambda: files.pdf(["hi"]), "a PDF"),
        ("deck.pptx", lambda: files.word(["hi"]), "a Word document"),
        ("notes.txt", lambda: files.pdf(["hi"]), "a PDF"),
        ("photo.pdf", lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary data"),
        ("old.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "an old Office file"),
    ],
)
def test_a_file_whose_extension_lies_is_refused(name: str, make: object, found: str) -> None:
    with pytest.raises(DocumentError, match=re.escape(name) + f" is not .*its content is {found}"):
        parse_document(name, make())  # type: ignore[operator]


def test_unsupported_types_and_damaged_files_name_the_file() -> None:
    with pytest.raises(DocumentError, match=r"sheet\.xlsx: files of type \.xlsx are not supported"):
        parse_document("sheet.xlsx", b"PK\x03\x04")
    damaged = files.pdf(["hello"])
    with pytest.raises(DocumentError, match=r"cut\.pdf"):
        parse_document("cut.pdf", damaged[:200])
    with pytest.raises(DocumentError, match=r"empty\.txt holds no text"):
        parse_document("empty.txt", b"  \n")


def test_stop_cancels_parsing() -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 1:
            cancel.set()

    with pytest.raises(DocumentCancelledError):
        parse_document("long.pdf", files.pdf(["a", "b", "c"]), progress=progress, cancel=cancel)


def test_sniff_names_what_the_bytes_are() -> None:
    assert sniff(files.pdf(["x"])) == "pdf"
    assert sniff(files.word(["x"])) == "docx"
    assert sniff(files.slides([("a", "b")])) == "pptx"
    assert sniff(b"<!DOCTYPE html><html></html>") == "html"
    assert sniff("纯文本".encode()) == "text"
