"""Real files for the document tests, made with the libraries that write them (fpdf2, pypdf,
python-docx, python-pptx): no checked-in binaries, nothing mocked."""

from __future__ import annotations

import io
import zipfile

import docx
import pptx
import pypdf
from fpdf import FPDF


def pdf(pages: list[str]) -> bytes:
    """A PDF with a text layer, one page per string (Latin-1 text: the core fonts)."""
    document = FPDF()
    document.set_font("Helvetica", size=12)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 8, text)
    return bytes(document.output())


def scanned_pdf(pages: int = 2) -> bytes:
    """A PDF whose pages hold only drawings (what a scan without OCR is: no text layer)."""
    document = FPDF()
    for _ in range(pages):
        document.add_page()
        document.set_fill_color(40, 40, 40)
        for row in range(20):
            document.rect(20, 20 + row * 10, 150, 4, style="F")  # lines of "print", as pixels would be
    return bytes(document.output())


def encrypted_pdf(text: str = "Secret plans", password: str = "hunter2") -> bytes:
    """A PDF encrypted with a user password (AES-256)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf([text])))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def word(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    """A docx with these paragraphs (and a table)."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def slides(texts: list[tuple[str, str]]) -> bytes:
    """A pptx, one slide per (title, body)."""
    presentation = pptx.Presentation()
    for title, body in texts:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def zip_bomb_docx(unpacked_mb: int = 210) -> bytes:
    """A real docx (it opens) with one more part of ``unpacked_mb`` MB of zeros, deflated to < 1 MB."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(word(["Nothing to see"]))) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in source.infolist():
            bomb.writestr(item, source.read(item.filename))
        with bomb.open("word/media/zeros.bin", "w") as member:
            block = bytes(1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(block)
    return out.getvalue()
