"""A user's images are checked before any model sees them: bombs, truncated files and lies are refused."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.vision_fixture import sample_image
from workbench.errors import ImageInputError
from workbench.images import (
    MAX_IMAGE_BYTES,
    MAX_SIDE,
    data_url,
    image_from_url,
    load_image,
    prepare_image,
    read_image_file,
)


def _bomb() -> bytes:
    """A 20,000 x 20,000 PNG of a few dozen KB: 400 Mpx once decoded."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    return buffer.getvalue()


def _tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "TIFF")
    return buffer.getvalue()


HOSTILE = [
    ("a decompression bomb", _bomb(), "decompression bomb"),
    ("a truncated PNG", sample_image((300, 200))[:-200], "not a readable image"),
    ("a truncated JPEG", sample_image((300, 200), kind="JPEG")[:400], "not a readable image"),
    ("text with a PNG name", b"this is not an image at all", "not a readable image"),
    ("a PNG header and junk", b"\x89PNG\r\n\x1a\n" + b"junk" * 100, "not a readable image"),
    ("a TIFF", _tiff(), "a TIFF image"),
    ("empty", b"", "not a readable image"),
]


@pytest.mark.parametrize(("case", "data", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_hostile_image_is_refused_with_a_message_naming_it(case: str, data: bytes, expected: str) -> None:
    with pytest.raises(ImageInputError, match=expected) as caught:
        prepare_image(data, "photo.png")
    assert "photo.png" in str(caught.value) and "PNG, JPEG, WebP or GIF" in str(caught.value)


def test_a_non_image_file_with_a_png_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "holiday.png"
    path.write_text("Dear diary, today I renamed a text file.")
    with pytest.raises(ImageInputError, match=r"holiday\.png cannot be used: not a readable image"):
        read_image_file(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ImageInputError, match=r"huge\.png is 10\.0 MiB, over the limit of 10 MiB"):
        read_image_file(path)
    with pytest.raises(ImageInputError, match="over the limit of 10 MiB"):
        prepare_image(b"\0" * (MAX_IMAGE_BYTES + 1))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match=r"Cannot read the image .*nothing\.png"):
        read_image_file(tmp_path / "nothing.png")


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_accepted_format_becomes_a_png(kind: str) -> None:
    png = prepare_image(sample_image((40, 30), "blue", kind))
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (40, 30)


def test_a_large_image_is_scaled_down_and_transparency_kept() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (MAX_SIDE * 2, 100), (0, 0, 0, 0)).save(buffer, "PNG")
    with Image.open(io.BytesIO(prepare_image(buffer.getvalue()))) as image:
        assert image.size == (MAX_SIDE, 50) and image.mode == "RGBA"


def test_a_data_url_round_trips() -> None:
    png = prepare_image(sample_image())
    assert image_from_url(data_url(png)) == png
    jpeg = base64.b64encode(sample_image(kind="JPEG")).decode()
    assert image_from_url(f"data:image/jpeg;base64,{jpeg}").startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/cat.png", "images are not fetched. Send the image itself as a data URL"),
        ("http://169.254.169.254/latest/meta-data", "not fetched"),
        ("file:///etc/passwd", "not a base64 data URL"),
        ("data:image/png,rawbytes", "not a base64 data URL"),
        ("data:image/png;base64,!!!not base64!!!", "invalid base64"),
        ("data:image/png;base64," + base64.b64encode(b"plain text").decode(), "not a readable image"),
        ("data:image/png;base64," + "A" * (MAX_IMAGE_BYTES * 2), "over the limit of 10 MiB"),
    ],
)
def test_an_image_url_that_is_not_a_good_data_url_is_refused(url: str, expected: str) -> None:
    with pytest.raises(ImageInputError, match=expected):
        image_from_url(url, "image 1")


def test_the_python_api_takes_paths_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(sample_image(kind="JPEG"))
    assert load_image(path).startswith(b"\x89PNG")
    assert load_image(str(path)) == load_image(path.read_bytes())
