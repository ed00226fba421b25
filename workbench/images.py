"""A user's images for vision models: checked, decoded and normalised before any model sees them.

Every door an image comes in by (the Chat page, ``ask --image``, ``serve``'s ``image_url`` parts, the
Python API) goes through :func:`prepare_image`: the bytes are capped, the pixel count is checked before
anything is decoded (a decompression bomb is refused, :func:`kernel.outputs.image_problem`), the whole
image is decoded once (a truncated file fails here, not inside a model), and what is kept is a PNG of at
most :data:`MAX_SIDE` pixels a side. Nothing here fetches a URL: only ``data:`` URLs are read.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from typing import TYPE_CHECKING

from workbench.errors import ImageInputError

if TYPE_CHECKING:
    from PIL import Image

MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""The largest image file accepted, in bytes (10 MiB)."""

MAX_SIDE = 2048
"""Images are scaled down to at most this many pixels a side (every vision model resizes further)."""

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
"""The formats accepted, as Pillow names them (a GIF gives its first frame)."""

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")
"""The file name endings the Chat page's uploader takes as images."""

_DATA_URL = re.compile(r"data:(image/[A-Za-z0-9.+-]+)?(;[^,]*)?,", re.ASCII)


def prepare_image(data: bytes, name: str = "image") -> bytes:
    """Check an image a user gave and return it as PNG bytes, scaled to at most :data:`MAX_SIDE` a side.

    Args:
        data: The file's bytes, in any of :data:`IMAGE_FORMATS`.
        name: What to call it in an error message (a file name, ``image 2``).

    Raises:
        ImageInputError: If it is too large, a decompression bomb, truncated, or not an image of those
            formats; the message names ``name`` and says what to do.
    """
    from PIL import Image

    from kernel.outputs import image_problem

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageInputError(_too_big(name, len(data)))
    problem = image_problem(data)
    if problem:
        raise ImageInputError(f"{name} cannot be used: {problem}. Send a PNG, JPEG, WebP or GIF image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format not in IMAGE_FORMATS:
                    raise ImageInputError(
                        f"{name} is a {opened.format} image; send a PNG, JPEG, WebP or GIF image instead."
                    )
                opened.load()  # decodes every pixel: a truncated file fails here
                image = opened.convert("RGBA" if _has_alpha(opened) else "RGB")
    except ImageInputError:
        raise
    except Exception as error:  # any Pillow failure: truncated data, a broken chunk, a bomb
        raise ImageInputError(
            f"{name} cannot be used: not a readable image ({type(error).__name__}: {error}). "
            "Send a PNG, JPEG, WebP or GIF image."
        ) from error
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def output_image(data: bytes) -> tuple[bytes | None, str]:
    """An image a tool or the code kernel produced, checked by :func:`prepare_image`'s rules for a model.

    Neither is trusted: a kernel can display any bytes labelled ``image/png``.

    Returns:
        The PNG bytes and ``""``, or None and why the image is refused, in a few words for the model.
    """
    from kernel.outputs import image_problem

    try:
        return prepare_image(data, "the image"), ""
    except ImageInputError:
        if len(data) > MAX_IMAGE_BYTES:
            why = f"over the size limit of {MAX_IMAGE_BYTES // (1024 * 1024)} MiB"
        else:
            why = image_problem(data) or "not a whole PNG, JPEG, WebP or GIF image"
        return None, f"it was refused: {why}"


def _too_big(name: str, size: int) -> str:
    return (
        f"{name} is {size / 1024 / 1024:.1f} MiB, over the limit of {MAX_IMAGE_BYTES // (1024 * 1024)} MiB "
        "for an image. Send a smaller or compressed image."
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def open_image(data: bytes, name: str = "an image of the conversation") -> Image.Image:
    """Check image bytes as :func:`prepare_image` does and decode them into an RGB ``PIL.Image``.

    Engines call it on :attr:`GenerationRequest.images`, which the Python API may fill with raw bytes.

    Raises:
        ImageInputError: If :func:`prepare_image` refuses the bytes.
    """
    from PIL import Image

    return Image.open(io.BytesIO(prepare_image(data, name))).convert("RGB")


def data_url(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URL of PNG bytes (what OpenAI-compatible servers take)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_from_url(url: str, name: str = "image") -> bytes:
    """The checked PNG bytes of an ``image_url``: only ``data:`` URLs with base64 data are read.

    An ``http(s)`` URL is refused, never fetched: a server that fetched what clients name could be made
    to reach hosts only it can reach.

    Raises:
        ImageInputError: For any other URL, bad base64, or an image :func:`prepare_image` refuses.
    """
    url = url.strip()
    if url.lower().startswith(("http://", "https://")):
        raise ImageInputError(
            f"{name} is a web address; images are not fetched. Send the image itself as a data URL "
            "(data:image/png;base64,...)."
        )
    match = _DATA_URL.match(url)
    if match is None or "base64" not in (match.group(2) or ""):
        raise ImageInputError(
            f"{name} is not a base64 data URL. Send the image as data:image/png;base64,... "
            "(or image/jpeg, image/webp, image/gif)."
        )
    encoded = url[match.end() :]
    if len(encoded) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise ImageInputError(
            f"{name} is over the limit of {MAX_IMAGE_BYTES // (1024 * 1024)} MiB for an image. "
            "Send a smaller or compressed image."
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ImageInputError(f"{name}'s data URL holds invalid base64 ({error}).") from error
    return prepare_image(raw, name)


def read_image_file(path: str | os.PathLike[str]) -> bytes:
    """Read an image file and return it checked, as PNG bytes (see :func:`prepare_image`).

    Raises:
        ImageInputError: If the file cannot be read, is over the size limit, or is not a usable image.
    """
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        if size > MAX_IMAGE_BYTES:
            raise ImageInputError(_too_big(name, size))
        with open(name, "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as error:
        raise ImageInputError(f"Cannot read the image {name}: {error.strerror or error}.") from error
    return prepare_image(data, name)


def load_image(image: bytes | str | os.PathLike[str], name: str = "image") -> bytes:
    """An image given as bytes or as a file path, checked and as PNG bytes (the Python API's images).

    Raises:
        ImageInputError: As :func:`prepare_image` and :func:`read_image_file`.
    """
    if isinstance(image, bytes | bytearray):
        return prepare_image(bytes(image), name)
    return read_image_file(image)
