"""stdin and stdout for the SDK's stdio server as asyncio pipes: no worker thread per line.

The SDK's ``stdio_server()`` reads and writes the standard streams through ``anyio.wrap_file``, which
runs every ``readline``, ``write`` and ``flush`` in a worker thread: three thread hand-offs per request,
most of a call's cost on a busy machine (bench/bench_mcp.py). It takes the two streams as arguments,
so here they are read and written on the event loop itself (``connect_read_pipe`` and
``connect_write_pipe``), and the SDK keeps doing the protocol.

As the SDK does for its own streams, file descriptors 0 and 1 are pointed elsewhere while serving (0 at
the null device, 1 at stderr) and the protocol uses private duplicates, so a tool that prints or reads
stdin cannot break the wire; they are restored afterwards. Where the streams are not pipes (a file, a
terminal the loop cannot watch), :func:`pipe_streams` yields None and the SDK's own streams are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator

MAX_LINE_BYTES = 256 * 1024 * 1024
"""The longest message read (one JSON-RPC message per line; ``upload_file`` carries files in base64)."""


class LineReader:
    """The lines of a pipe, as ``stdio_server`` iterates them."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class LineWriter:
    """Text written to a pipe, as ``stdio_server`` writes it (``write`` then ``flush``)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        """Queue ``text`` on the pipe."""
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        """Wait until the pipe has taken what was queued."""
        await self._writer.drain()


@contextlib.asynccontextmanager
async def pipe_streams() -> AsyncIterator[tuple[LineReader, LineWriter] | None]:
    """Stdin and stdout as a :class:`LineReader` and a :class:`LineWriter`, or None where they are no pipes."""
    loop = asyncio.get_running_loop()
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    try:
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
        )
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
        )
    except (ValueError, OSError):  # not a pipe, socket or character device the loop can watch
        for fd in (wire_in, wire_out):
            with contextlib.suppress(OSError):
                os.close(fd)
        yield None
        return
    saved = (os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        writer = asyncio.StreamWriter(write_transport, protocol, reader, loop)
        yield LineReader(reader), LineWriter(writer)
    finally:
        for fd, original in zip((0, 1), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        read_transport.close()
        write_transport.close()
