"""What one code run showed, kept in the transcript: outputs in order, timing, notes.

An interpreter observation carries an :class:`ExecutionRecord` so that a saved and reloaded Code
conversation can be drawn again from its messages alone. It is a plain copy of the kernel's
``Execution`` (``workbench.modes.code_format.execution_record`` converts one), with no kernel
import here, and it round-trips through JSON (images as base64).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import TranscriptError


@dataclass
class OutputRecord:
    """One output of a run, in the order the kernel sent it.

    Attributes:
        kind: ``stream``, ``result``, ``display`` or ``error``.
        name: ``stdout`` or ``stderr`` for a stream, else ``""``.
        text: The plain text (for an error: the traceback).
        html: The HTML form, if the output has one (pandas tables).
        png: PNG bytes of an image output, or None.
    """

    kind: str
    name: str = ""
    text: str = ""
    html: str | None = None
    png: bytes | None = None

    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """Return the JSON form (the image as base64, or ``"png_omitted": true``)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.name:
            out["name"] = self.name
        if self.text:
            out["text"] = self.text
        if self.html is not None:
            out["html"] = self.html
        if self.png is not None:
            if include_images:
                out["png"] = base64.b64encode(self.png).decode("ascii")
            else:
                out["png_omitted"] = True
        return out

    @classmethod
    def from_dict(cls, data: Any) -> OutputRecord:
        """Build from :meth:`to_dict` output.

        Raises:
            TranscriptError: If the data is not a valid output.
        """
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise TranscriptError("Each output of a run must be an object with a string 'kind'.")
        png = data.get("png")
        if png is not None:
            try:
                png = base64.b64decode(png, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise TranscriptError("An output image is not valid base64.") from None
        html = data.get("html")
        return cls(
            kind=data["kind"],
            name=_string(data.get("name")),
            text=_string(data.get("text")),
            html=html if isinstance(html, str) else None,
            png=png,
        )


@dataclass
class ExecutionRecord:
    """Everything a page shows of one run.

    Attributes:
        outputs: Every output in order.
        error_name: The exception's class name when the code raised, else None.
        error_value: The exception's message.
        timed_out: The run hit the time limit and was interrupted.
        restarted: The kernel was restarted during or just before the run (state lost).
        note: What went wrong with the kernel, for people, or ``""``.
        duration: Wall-clock seconds the run took.
        execution_count: The kernel's ``In [n]`` counter, or None.
    """

    outputs: list[OutputRecord] = field(default_factory=list)
    error_name: str | None = None
    error_value: str = ""
    timed_out: bool = False
    restarted: bool = False
    note: str = ""
    duration: float = 0.0
    execution_count: int | None = None

    @property
    def images(self) -> list[bytes]:
        """The PNG bytes of every image output, in order."""
        return [output.png for output in self.outputs if output.png is not None]

    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """Return the JSON form; empty optional fields are left out."""
        out: dict[str, Any] = {
            "outputs": [o.to_dict(include_images=include_images) for o in self.outputs],
            "duration": self.duration,
        }
        if self.error_name is not None:
            out["error_name"] = self.error_name
            out["error_value"] = self.error_value
        for key in ("timed_out", "restarted"):
            if getattr(self, key):
                out[key] = True
        if self.note:
            out["note"] = self.note
        if self.execution_count is not None:
            out["execution_count"] = self.execution_count
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ExecutionRecord:
        """Build from :meth:`to_dict` output.

        Raises:
            TranscriptError: If the data is not a valid run record.
        """
        if not isinstance(data, dict) or not isinstance(data.get("outputs", []), list):
            raise TranscriptError("A message's 'execution' must be an object with a list of 'outputs'.")
        duration = data.get("duration", 0.0)
        count = data.get("execution_count")
        error_name = data.get("error_name")
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            raise TranscriptError("A run's 'duration' must be a number of seconds.")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            raise TranscriptError("A run's 'execution_count' must be an integer.")
        return cls(
            outputs=[OutputRecord.from_dict(item) for item in data.get("outputs", [])],
            error_name=error_name if isinstance(error_name, str) else None,
            error_value=_string(data.get("error_value")),
            timed_out=data.get("timed_out") is True,
            restarted=data.get("restarted") is True,
            note=_string(data.get("note")),
            duration=float(duration),
            execution_count=count,
        )


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""
