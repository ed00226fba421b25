"""What a parsed document is: its file name, its kind, and its text cut into pages, slides or parts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """The text of one page (pdf), slide (pptx) or the whole of a flowing document (docx, html, md, txt).

    Attributes:
        text: The text, as extracted.
        location: Where it is, for a citation: ``page 3``, ``slide 2``; empty for flowing documents.
    """

    text: str
    location: str = ""


@dataclass(frozen=True)
class Document:
    """A parsed file.

    Attributes:
        name: The file's name (no folder), as the user knows it.
        kind: ``pdf``, ``docx``, ``pptx``, ``html``, ``md`` or ``txt``.
        sections: Its text, page by page or slide by slide.
        sha256: The hex digest of the file's bytes (the same file is not embedded twice).
        size: The file's size in bytes.
    """

    name: str
    kind: str
    sections: list[Section] = field(default_factory=list)
    sha256: str = ""
    size: int = 0

    @property
    def text(self) -> str:
        """All its text, sections separated by blank lines."""
        return "\n\n".join(section.text for section in self.sections if section.text)
