"""The GGUF check that runs before any engine reads a file: hostile and broken files, built byte by byte.

llama.cpp can abort the whole process on a malformed file, so every way a header can lie is refused
here with a sentence, and the real embedded file passes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from workbench.errors import ModelLoadError
from workbench.models.gguf_check import GGUFFormatError, read_gguf
from workbench.models.loading import check_gguf, embedded_gguf_path

F32, Q4_1 = 0, 3


def gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def build_gguf(
    *,
    version: int = 3,
    metadata: list[tuple[str, int, bytes]] | None = None,
    tensors: list[tuple[str, tuple[int, ...], int, int]] | None = None,
    data_size: int | None = None,
    alignment: int = 32,
    counts: tuple[int, int] | None = None,
) -> bytes:
    """A GGUF file: metadata as (key, type, encoded value), tensors as (name, shape, type, offset)."""
    if metadata is None:
        metadata = [("general.architecture", 8, gguf_string("llama"))]
    if tensors is None:
        tensors = [("token_embd.weight", (8, 4), F32, 0), ("output.weight", (8, 2), F32, 128)]
    n_tensors, n_keys = counts or (len(tensors), len(metadata))
    out = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_keys)
    for key, type_id, value in metadata:
        out += gguf_string(key) + struct.pack("<I", type_id) + value
    for name, shape, type_id, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape)
        out += struct.pack("<IQ", type_id, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + b"\x01" * (data_size if data_size is not None else 128 + 64)


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    return path


def test_a_valid_file_passes(tmp_path):
    info = read_gguf(write(tmp_path, build_gguf()))
    assert info.architecture == "llama"
    assert [t.n_bytes for t in info.tensors] == [128, 64]


def test_the_embedded_model_passes_and_its_metadata_is_read():
    info = read_gguf(embedded_gguf_path())
    assert (info.architecture, info.context_length, info.file_type) == ("llama", 8192, "Q4_1")
    assert len(info.tensors) == 272
    assert info.metadata["tokenizer.ggml.tokens"] == 49152  # long arrays are counted, not kept
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.data_offset + max(t.offset + t.n_bytes for t in info.tensors) == info.file_size


ARRAY_OF_ARRAYS = struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 8, 0)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"version": 1}, "GGUF version 1 is not supported"),
        ({"version": 3 << 24}, "big-endian GGUF file"),
        ({"counts": (2, 1 << 60)}, "the header claims 1152921504606846976 metadata keys"),
        ({"counts": (2, 5)}, "the file ends inside"),
        ({"metadata": [("general.name", 8, gguf_string("x"))]}, "names no model architecture"),
        ({"metadata": [("general.architecture", 99, b"")]}, "unknown value type 99"),
        ({"metadata": [("general.architecture", 8, struct.pack("<Q", 1 << 40))]}, "the file ends inside"),
        ({"metadata": [("general.architecture", 9, ARRAY_OF_ARRAYS)]}, "nested arrays"),
        (
            {
                "metadata": [
                    ("general.architecture", 8, gguf_string("llama")),
                    ("x", 9, struct.pack("<IQ", 8, 1 << 50)),
                ]
            },
            "the file ends inside the array 'x'",
        ),
        (
            {
                "metadata": [
                    ("general.architecture", 8, gguf_string("llama")),
                    ("x", 9, struct.pack("<IQ", 4, 1 << 50)),
                ]
            },
            "the file ends inside the array 'x'",
        ),
        ({"tensors": []}, "it holds no tensors"),
        ({"tensors": [("t", (8, 4), 200, 0)]}, "the tensor 't' has an unknown type 200"),
        ({"tensors": [("t", (8, 4, 1, 1, 1), F32, 0)]}, "the tensor 't' has 5 dimensions"),
        ({"tensors": [("t", (), F32, 0)]}, "the tensor 't' has 0 dimensions"),
        ({"tensors": [("t", (8, 0), F32, 0)]}, "an empty or negative dimension"),
        ({"tensors": [("t", (30, 1), Q4_1, 0)]}, "not a multiple of its type's block of 32"),
        ({"tensors": [("t", (8, 4), F32, 1 << 40)]}, "it is truncated"),
        ({"tensors": [("t", (1 << 62, 1 << 62), F32, 0)]}, "it is truncated"),
        ({"tensors": [("t", (8, 4), F32, 8)]}, "is not aligned to 32 bytes"),
        ({"tensors": [("a", (8, 4), F32, 0), ("b", (8, 4), F32, 64)]}, "the tensor 'b' overlaps"),
        ({"tensors": [("a", (8, 4), F32, 0), ("a", (8, 4), F32, 128)]}, "the tensor 'a' is listed twice"),
        ({"data_size": 150}, "the tensor 'output.weight' ends at byte"),
        (
            {
                "metadata": [
                    ("general.architecture", 8, gguf_string("llama")),
                    ("general.alignment", 4, struct.pack("<I", 3)),
                ]
            },
            "alignment 3 is not a power of two",
        ),
        (
            {"metadata": [("general.architecture", 8, struct.pack("<Q", 2) + b"\xff\xfe")]},
            "is not valid UTF-8",
        ),
    ],
)
def test_a_broken_file_is_refused_with_the_reason(tmp_path, kwargs, reason):
    with pytest.raises(GGUFFormatError, match=reason.replace("(", r"\(")):
        read_gguf(write(tmp_path, build_gguf(**kwargs)))


def test_every_truncation_of_a_valid_file_is_refused(tmp_path):
    whole = build_gguf()
    for size in range(len(whole) - 1):
        path = write(tmp_path, whole[:size])
        if size < 4:
            with pytest.raises(ModelLoadError, match="is not a GGUF file"):
                check_gguf(path)
            continue
        with pytest.raises(ModelLoadError) as info:
            check_gguf(path)
        assert str(info.value).startswith(f"Could not load the model from {path}: "), size
        assert str(info.value).endswith("check them or choose another model."), size


def test_check_gguf_names_the_file_and_the_next_step(tmp_path):
    path = write(tmp_path, build_gguf(tensors=[("t", (8, 4), 200, 0)]))
    with pytest.raises(ModelLoadError) as info:
        check_gguf(path)
    assert str(info.value) == (
        f"Could not load the model from {path}: the tensor 't' has an unknown type 200. The files may be "
        "corrupt, truncated or of an unsupported architecture; check them or choose another model."
    )
