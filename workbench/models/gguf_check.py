"""Checking a GGUF file before an engine sees it, and reading its metadata.

llama.cpp trusts the file: a tensor table that points past the end, an unknown tensor type or an absurd
shape can abort the whole process (a server with every session in it). :func:`read_gguf` walks the
header, the metadata and the tensor table, and checks every tensor's type, shape, offset and size
against the file, so a corrupt or truncated file is refused with a sentence saying what is wrong.

The ``gguf`` package's ``GGUFReader`` reads the same things but builds a numpy view per vocabulary
entry (8 s for the embedded model on a busy 2-core machine); this walk reads only what it checks and
keeps strings and numbers, so it takes milliseconds. The tensor types' block sizes come from ``gguf``.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: GGUF versions this reader knows (version 1 used 32-bit counts and is long gone).
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4
# Value types of GGUF metadata: struct format of the scalars; 8 is a string, 9 an array.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this are counted, not kept (the vocabulary, the merges).
_KEEP_ARRAY = 64


class GGUFFormatError(ValueError):
    """The file is not a GGUF file an engine can load; the message says what is wrong with it."""


@dataclass
class GGUFTensor:
    """One entry of the tensor table.

    Attributes:
        name: The tensor's name.
        shape: Its dimensions, innermost first (as GGUF stores them).
        type_id: The ggml type number.
        offset: Offset of its data from the start of the data section.
        n_bytes: Size of its data.
    """

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int
    n_bytes: int


@dataclass
class GGUFInfo:
    """What :func:`read_gguf` found.

    Attributes:
        path: The file.
        version: The GGUF version.
        metadata: Every key with its value (arrays of more than 64 items as their length only).
        tensors: The tensor table.
        data_offset: Where the tensor data starts in the file.
        file_size: The file's size in bytes.
    """

    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[GGUFTensor] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str:
        """The model's architecture (``general.architecture``: ``llama``, ``qwen2``, ``chatglm``, ...)."""
        return str(self.metadata.get("general.architecture", ""))

    @property
    def context_length(self) -> int:
        """The context the model was trained with, or 0 when the file does not say."""
        value = self.metadata.get(f"{self.architecture}.context_length", 0)
        return int(value) if isinstance(value, int) else 0

    @property
    def file_type(self) -> str:
        """The weights' precision as llama.cpp names it (``Q4_1``, ``Q8_0``, ``F16``, ...)."""
        value = self.metadata.get("general.file_type")
        if not isinstance(value, int):
            return "unknown"
        from gguf.constants import LlamaFileType

        try:
            name = LlamaFileType(value).name
        except ValueError:
            return f"type {value}"
        return name.removeprefix("MOSTLY_").removeprefix("ALL_")

    @property
    def chat_template(self) -> str | None:
        """The Jinja chat template (``tokenizer.chat_template``), or None."""
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None


class _Cursor:
    """Reads little-endian values from a buffer, refusing to run past its end."""

    def __init__(self, data: Any, size: int) -> None:
        self.data = data
        self.size = size
        self.pos = 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFFormatError(f"the file ends inside {what} (at byte {self.pos} of {self.size})")

    def scalar(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += n
        return value

    def string(self, what: str, keep: bool = True) -> str:
        length = self.scalar("<Q", what)
        self.need(length, what)
        raw = bytes(self.data[self.pos : self.pos + length]) if keep else b""
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFFormatError(f"{what} is not valid UTF-8") from exc


def _read_value(cur: _Cursor, type_id: int, key: str) -> Any:
    if type_id in _SCALARS:
        return cur.scalar(_SCALARS[type_id], f"the value of {key!r}")
    if type_id == _STRING:
        return cur.string(f"the value of {key!r}")
    if type_id != _ARRAY:
        raise GGUFFormatError(f"the metadata key {key!r} has an unknown value type {type_id}")
    item_type = cur.scalar("<I", f"the array {key!r}")
    count = cur.scalar("<Q", f"the array {key!r}")
    if item_type in _SCALARS:
        width = struct.calcsize(_SCALARS[item_type])
        cur.need(count * width, f"the array {key!r}")
        if count > _KEEP_ARRAY:
            cur.pos += count * width
            return count
        return [cur.scalar(_SCALARS[item_type], f"the array {key!r}") for _ in range(count)]
    if item_type == _STRING:
        cur.need(count * 8, f"the array {key!r}")  # each string has at least its length
        if count <= _KEEP_ARRAY:
            return [cur.string(f"an item of {key!r}") for _ in range(count)]
        _skip_strings(cur, count, key)
        return count
    if item_type == _ARRAY:
        raise GGUFFormatError(f"the metadata key {key!r} holds nested arrays, which GGUF models do not use")
    raise GGUFFormatError(f"the array {key!r} has an unknown item type {item_type}")


def _skip_strings(cur: _Cursor, count: int, key: str) -> None:
    """Step over ``count`` strings (a vocabulary: 50-250 thousand of them, so without per-item calls)."""
    unpack, data, pos, size = struct.unpack_from, cur.data, cur.pos, cur.size
    for _ in range(count):
        if pos + 8 > size:
            break
        pos += 8 + unpack("<Q", data, pos)[0]
    else:
        if pos <= size:
            cur.pos = pos
            return
    raise GGUFFormatError(f"the file ends inside the array {key!r}")


def _tensor_bytes(name: str, shape: tuple[int, ...], type_id: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):
        raise GGUFFormatError(f"the tensor {name!r} has an unknown type {type_id}") from None
    if any(dim <= 0 for dim in shape):
        raise GGUFFormatError(f"the tensor {name!r} has an empty or negative dimension {list(shape)}")
    if shape[0] % block:
        raise GGUFFormatError(
            f"the tensor {name!r} has {shape[0]} values per row, not a multiple of its type's block of {block}"
        )
    count = 1
    for dim in shape:
        count *= dim
    return count // block * type_size


def read_gguf(path: Path) -> GGUFInfo:
    """Read and check a GGUF file's header, metadata and tensor table.

    Raises:
        GGUFFormatError: If the file is not a complete, consistent GGUF file (truncated, corrupt, a
            tensor that points outside the file, an unknown tensor type, no architecture...).
        OSError: If the file cannot be read.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size < 24:
            raise GGUFFormatError(f"the file is {size} bytes long, shorter than a GGUF header")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read(path, _Cursor(data, size))


def _read(path: Path, cur: _Cursor) -> GGUFInfo:
    magic = bytes(cur.data[0:4])
    if magic != b"GGUF":
        raise GGUFFormatError(f"bad magic bytes {magic!r}")
    cur.pos = 4
    version = cur.scalar("<I", "the header")
    if version not in VERSIONS:
        swapped = struct.unpack("<I", struct.pack(">I", version))[0]
        if swapped in VERSIONS:
            raise GGUFFormatError(
                "it is a big-endian GGUF file; use the little-endian conversion of the model"
            )
        raise GGUFFormatError(
            f"GGUF version {version} is not supported (known: {', '.join(map(str, VERSIONS))})"
        )
    info = GGUFInfo(path=path, version=version, file_size=cur.size)
    n_tensors = cur.scalar("<Q", "the header")
    n_keys = cur.scalar("<Q", "the header")
    # Each key or tensor entry takes at least 8 bytes: a count larger than the file is corruption.
    if n_keys * 8 > cur.size or n_tensors * 8 > cur.size:
        raise GGUFFormatError(f"the header claims {n_keys} metadata keys and {n_tensors} tensors")
    for _ in range(n_keys):
        key = cur.string("a metadata key")
        type_id = cur.scalar("<I", f"the type of {key!r}")
        info.metadata[key] = _read_value(cur, type_id, key)
    if not info.architecture:
        raise GGUFFormatError("it names no model architecture (general.architecture)")
    seen: set[str] = set()
    for _ in range(n_tensors):
        name = cur.string("the tensor table")
        n_dims = cur.scalar("<I", f"the tensor {name!r}")
        if not 1 <= n_dims <= _MAX_DIMS:
            raise GGUFFormatError(f"the tensor {name!r} has {n_dims} dimensions")
        shape = tuple(cur.scalar("<Q", f"the tensor {name!r}") for _ in range(n_dims))
        type_id = cur.scalar("<I", f"the tensor {name!r}")
        offset = cur.scalar("<Q", f"the tensor {name!r}")
        if name in seen:
            raise GGUFFormatError(f"the tensor {name!r} is listed twice")
        seen.add(name)
        info.tensors.append(GGUFTensor(name, shape, type_id, offset, _tensor_bytes(name, shape, type_id)))
    if not info.tensors:
        raise GGUFFormatError("it holds no tensors")
    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFFormatError(f"its alignment {alignment!r} is not a power of two")
    info.data_offset = -(-cur.pos // alignment) * alignment
    _check_layout(info, alignment)
    return info


def _check_layout(info: GGUFInfo, alignment: int) -> None:
    """Every tensor's data is aligned, inside the file and apart from the others."""
    end = 0
    for tensor in sorted(info.tensors, key=lambda t: t.offset):
        if tensor.offset % alignment:
            raise GGUFFormatError(f"the tensor {tensor.name!r} is not aligned to {alignment} bytes")
        if tensor.offset < end:
            raise GGUFFormatError(f"the tensor {tensor.name!r} overlaps the tensor before it")
        end = tensor.offset + tensor.n_bytes
        if info.data_offset + end > info.file_size:
            raise GGUFFormatError(
                f"the file is {info.file_size:,} bytes long but the tensor {tensor.name!r} ends at byte "
                f"{info.data_offset + end:,}: it is truncated"
            )
