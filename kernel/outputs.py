"""What one execution produced: every output in order, and its text for a model.

:class:`OutputCollector` turns the Jupyter IOPub messages of one execution into an
:class:`Execution`. It keeps at most a fixed number of characters of text and a fixed number of
image bytes, so code that prints forever cannot exhaust the app's memory; what is dropped is
counted and shown with a visible marker.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

#: ANSI escape sequences (colours, cursor moves, OSC titles) as IPython writes them in tracebacks.
_ANSI = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")

OutputKind = Literal["stream", "result", "display", "error"]


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor moves) from ``text``."""
    return _ANSI.sub("", text)


def cut_marker(count: int) -> str:
    """The marker put where ``count`` characters were left out."""
    return f"[... {count} more characters cut ...]"


@dataclass(frozen=True)
class ExecutionError:
    """An exception raised by the executed code.

    Attributes:
        name: The exception class name, e.g. ``"ZeroDivisionError"``.
        value: The exception message.
        traceback: The traceback as plain text, ANSI codes removed.
    """

    name: str
    value: str
    traceback: str

    def short(self, max_lines: int = 12) -> str:
        """``Name: value`` and the last ``max_lines`` lines of the traceback."""
        lines = [line for line in self.traceback.splitlines() if line.strip(" -")]
        tail = lines[-max_lines:]
        head = f"{self.name}: {self.value}"
        if tail and tail[-1].strip() == head.strip():
            tail = tail[:-1]
        return "\n".join([*tail, head]) if tail else head


@dataclass
class Output:
    """One output of an execution, in the order the kernel sent it.

    Attributes:
        kind: ``"stream"`` (stdout/stderr text), ``"result"`` (the value of the last
            expression), ``"display"`` (``display()``, plots) or ``"error"``.
        data: MIME type to content: ``text/plain`` and ``text/html`` as ``str``,
            ``image/png`` as PNG ``bytes``. For a stream, ``{"text/plain": text}``.
        name: ``"stdout"`` or ``"stderr"`` for a stream, else ``""``.
    """

    kind: OutputKind
    data: dict[str, Any]
    name: str = ""

    @property
    def text(self) -> str:
        """The ``text/plain`` content, or ``""``."""
        value = self.data.get("text/plain", "")
        return value if isinstance(value, str) else ""

    @property
    def image(self) -> bytes | None:
        """The PNG bytes of an image output, or None."""
        value = self.data.get("image/png")
        return value if isinstance(value, bytes) else None


def image_problem(png: bytes) -> str:
    """Why an image must not be shown (a decompression bomb, not an image), or "" when it is fine.

    The pixel count is checked against Pillow's ``Image.MAX_IMAGE_PIXELS`` before anything is
    decoded, and every Pillow error counts as unreadable: a 48 KB PNG of 20,000 x 20,000 pixels
    raises ``DecompressionBombError`` (no ``OSError``), and a browser or ``st.image`` would try to
    decode it whole.
    """
    from PIL import Image  # imported here: Pillow is only needed once an image exists

    limit = Image.MAX_IMAGE_PIXELS or 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(png)) as image:
                width, height = image.size
                if limit and width * height > limit:
                    return f"{width}x{height} pixels is over the limit of {limit} pixels"
                image.verify()  # reads the chunks and their checksums, decodes nothing
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"over the limit of {limit} pixels (a decompression bomb)"
    except Exception as error:  # any other Pillow failure (UnidentifiedImageError, SyntaxError, ...)
        return f"not a readable image ({type(error).__name__})"
    return ""


def image_size(png: bytes) -> tuple[int, int] | None:
    """Width and height in pixels of an image, or None if it is unreadable or too big to show."""
    from PIL import Image

    if image_problem(png):
        return None
    with Image.open(io.BytesIO(png)) as image:
        return image.size


STATE_LOST = "its state is lost (variables and imports are gone; files in the work folder were kept)"
"""What a kernel restart costs, as a clause for notes to people and models: "…restarted, so {STATE_LOST}."."""


@dataclass
class Execution:
    """Everything one ``KernelSession.execute`` call produced.

    Attributes:
        code: The code that ran.
        stdout: All text printed to standard output (capped, with a marker where cut).
        stderr: All text printed to standard error (capped, with a marker where cut).
        result: The ``text/plain`` of the last expression's value, or None.
        images: PNG bytes of every image displayed, in order.
        error: The exception the code raised, or None.
        timed_out: The wall-clock limit was reached and the run was interrupted.
        restarted: The kernel was restarted during or just before this run, so its variables
            and imports are gone (files in the work folder are kept).
        outputs: Every output in order, for a page to render.
        note: A sentence for people and models saying what went wrong with the kernel, or "".
        duration: Wall-clock seconds the call took.
        execution_count: The kernel's ``In [n]`` counter for this run, or None.
        cut_chars: Characters of text output dropped because of the output cap.
    """

    code: str = ""
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    images: list[bytes] = field(default_factory=list)
    error: ExecutionError | None = None
    timed_out: bool = False
    restarted: bool = False
    outputs: list[Output] = field(default_factory=list)
    note: str = ""
    duration: float = 0.0
    execution_count: int | None = None
    cut_chars: int = 0

    @property
    def ok(self) -> bool:
        """True when the code ran to the end without an error, time-out or restart."""
        return self.error is None and not self.timed_out and not self.restarted

    def for_model(self, max_chars: int = 4000) -> str:
        """The outputs as text for a language model, at most about ``max_chars`` characters.

        Outputs come in order; images become ``[image 1: 640x480]``; an error becomes
        ``Name: value`` with a short traceback; long text is cut in the middle with a marker
        such as ``[... 12345 more characters cut ...]``. The error and the note on a time-out
        or restart are always kept whole.

        Args:
            max_chars: The budget in characters for the body (the error and note come on top,
                each capped at about a quarter of it).
        """
        parts: list[str] = []
        image_number = 0
        for output in self.outputs:
            if output.kind == "error":
                continue
            png = output.image
            if png is not None:
                image_number += 1
                size = image_size(png)
                label = f"{size[0]}x{size[1]}" if size else "unreadable"
                parts.append(f"[image {image_number}: {label}]\n")
            elif output.text:
                text = output.text
                parts.append(text if text.endswith("\n") else text + "\n")
        body = _cut_middle("".join(parts).rstrip("\n"), max_chars)
        tail: list[str] = []
        if self.error is not None:
            tail.append(_cut_middle(self.error.short(), max(400, max_chars // 4)))
        if self.note:
            tail.append(f"[{self.note}]")
        text = "\n".join(piece for piece in [body, *tail] if piece)
        return text or "[no output]"


def _cut_middle(text: str, max_chars: int) -> str:
    """Keep the head and the tail of ``text`` (errors and totals come last) within ``max_chars``."""
    if len(text) <= max_chars:
        return text
    head = max_chars * 3 // 5
    tail = max(max_chars - head, 0)
    cut = len(text) - head - tail
    return f"{text[:head]}\n{cut_marker(cut)}\n{text[len(text) - tail :] if tail else ''}"


class OutputCollector:
    """Builds an :class:`Execution` from the IOPub messages of one execution.

    Args:
        execution: The object to fill in.
        max_chars: Characters of text (streams, results, HTML) kept in all; the rest is counted.
        max_image_bytes: Bytes of images kept in all; further images are replaced by a note.
    """

    def __init__(self, execution: Execution, max_chars: int, max_image_bytes: int) -> None:
        self.execution = execution
        self._chars_left = max_chars
        self._image_bytes_left = max_image_bytes
        self._stream_parts: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def add(self, msg: dict[str, Any]) -> None:
        """Record one IOPub message (the caller has checked that its parent is this execution)."""
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        content = msg.get("content", {})
        if kind == "stream":
            self._add_stream(str(content.get("name", "stdout")), str(content.get("text", "")))
        elif kind == "execute_result":
            data = self._decode(content.get("data", {}))
            self.execution.result = data.get("text/plain")
            self.execution.outputs.append(Output("result", data))
        elif kind == "display_data":
            self.execution.outputs.append(Output("display", self._decode(content.get("data", {}))))
        elif kind == "error":
            traceback = "\n".join(strip_ansi(str(line)) for line in content.get("traceback", []))
            error = ExecutionError(
                name=str(content.get("ename", "Error")),
                value=strip_ansi(str(content.get("evalue", ""))),
                traceback=self._take(traceback),
            )
            self.execution.error = error
            self.execution.outputs.append(
                Output("error", {"text/plain": error.traceback or f"{error.name}: {error.value}"})
            )
        elif kind == "execute_input":
            count = content.get("execution_count")
            self.execution.execution_count = count if isinstance(count, int) else None

    def finish(self) -> Execution:
        """Join the streams and add the cut markers; return the execution."""
        marker = f"\n{cut_marker(self.execution.cut_chars)}\n" if self.execution.cut_chars else ""
        self.execution.stdout = "".join(self._stream_parts["stdout"])
        self.execution.stderr = "".join(self._stream_parts["stderr"])
        if marker:
            self.execution.outputs.append(Output("stream", {"text/plain": marker}, "stderr"))
            self.execution.stderr += marker
        self.execution.images = [o.image for o in self.execution.outputs if o.image is not None]
        return self.execution

    def _add_stream(self, name: str, text: str) -> None:
        name = name if name in self._stream_parts else "stdout"
        kept = self._take(text)
        if not kept:
            return
        self._stream_parts[name].append(kept)
        outputs = self.execution.outputs
        # Merge consecutive chunks of one stream, as notebooks show them.
        if outputs and outputs[-1].kind == "stream" and outputs[-1].name == name:
            outputs[-1].data["text/plain"] += kept
        else:
            outputs.append(Output("stream", {"text/plain": kept}, name))

    def _take(self, text: str) -> str:
        """Return the part of ``text`` that fits in the text budget; count the rest as cut."""
        if len(text) <= self._chars_left:
            self._chars_left -= len(text)
            return text
        kept = text[: max(self._chars_left, 0)]
        self.execution.cut_chars += len(text) - len(kept)
        self._chars_left = 0
        return kept

    def _decode(self, data: dict[str, Any]) -> dict[str, Any]:
        """Decode base64 images and cap text in one MIME bundle."""
        decoded: dict[str, Any] = {}
        dropped = ""  # why the image was left out: it replaces the bundle's text/plain
        for mime, value in data.items():
            if mime == "image/png" and isinstance(value, str):
                try:
                    png = base64.b64decode(value)
                except (binascii.Error, ValueError):
                    dropped = "[image dropped: not valid base64]"
                    continue
                if len(png) > self._image_bytes_left:
                    dropped = "[image dropped: the image output cap was reached]"
                    continue
                problem = image_problem(png)
                if problem:
                    dropped = f"[image dropped: {problem}]"
                    continue
                self._image_bytes_left -= len(png)
                decoded[mime] = png
            elif mime in ("text/plain", "text/html", "text/markdown", "text/latex") and isinstance(
                value, str
            ):
                decoded[mime] = self._take(value)
        if dropped:
            decoded["text/plain"] = dropped
        return decoded
