"""Files in a session's work folder: upload, list, download, all confined to the folder.

The sandboxed code owns the work folder and may plant symbolic links or swap a file for a link
at any moment, while the app (often root) reads and writes there. So names are checked
(:func:`resolve_in_workdir`) *and* every file is opened component by component relative to the
folder with ``O_NOFOLLOW``: a link that appears between the check and the open is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kernel.errors import KernelError, WorkdirFullError, WorkdirPathError

#: Refuse to read files larger than this by default (bytes); the page offers downloads below it.
DEFAULT_MAX_READ = 512 * 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    """A file in the work folder.

    Attributes:
        name: Path relative to the work folder, with ``/`` separators.
        size: Size in bytes.
        mtime: Last modification, seconds since the epoch.
    """

    name: str
    size: int
    mtime: float


def resolve_in_workdir(workdir: Path, name: str) -> Path:
    """The absolute path of ``name`` inside ``workdir``, refusing anything that leaves it.

    Args:
        workdir: The session's work folder.
        name: A relative path such as ``"data.csv"`` or ``"out/plot.png"``.

    Raises:
        WorkdirPathError: If ``name`` is empty, absolute, contains ``..``, or resolves (through
            symbolic links) outside the work folder.
    """
    if not name or "\x00" in name:
        raise WorkdirPathError(f"{name!r} is not a file name. Give a name such as 'data.csv'.")
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith("~"):
        raise WorkdirPathError(
            f"'{name}' is an absolute path; files live in the work folder, so give a relative name "
            "such as 'data.csv'."
        )
    if ".." in pure.parts:
        raise WorkdirPathError(
            f"'{name}' contains '..'; give a name inside the work folder such as 'data.csv'."
        )
    root = Path(os.path.realpath(workdir))
    resolved = Path(os.path.realpath(root / pure))
    if resolved != root and not resolved.is_relative_to(root):
        raise WorkdirPathError(
            f"'{name}' is a symbolic link pointing outside the work folder; only files inside it "
            "can be read or written."
        )
    return resolved


@contextmanager
def _open_beneath(workdir: Path, name: str, flags: int, mode: int = 0o644) -> Iterator[int]:
    """Open ``name`` under ``workdir`` without following any symbolic link on the way."""
    root = Path(os.path.realpath(workdir))
    relative = resolve_in_workdir(root, name).relative_to(root)
    if not relative.parts:
        raise WorkdirPathError(
            f"'{name}' is the work folder itself, not a file; give a file name such as 'data.csv'."
        )
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for part in relative.parts[:-1]:
            fds.append(
                os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1])
            )
        # O_NONBLOCK: a FIFO planted by the code must not hang the app.
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(relative.parts[-1], flags, mode, dir_fd=fds[-1])
    except OSError as error:
        for fd in fds:
            os.close(fd)
        if error.errno == errno.ELOOP:
            raise WorkdirPathError(
                f"'{name}' became a symbolic link while being opened; refused. Replace the link with a regular file."
            ) from error
        if error.errno == errno.ENOENT:
            raise WorkdirPathError(
                f"'{name}' does not exist in the work folder; list the files to check."
            ) from error
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WorkdirPathError(
                f"'{name}' is not a regular file; only files can be read or written. Give the name of a file."
            )
        yield fd
    finally:
        os.close(fd)
        for dir_fd in fds:
            os.close(dir_fd)


def save_upload(workdir: Path, name: str, data: bytes) -> Path:
    """Write an uploaded file into the work folder (replacing a file of the same name).

    The file is given to the work folder's owner, so the sandboxed code can change it.

    Raises:
        WorkdirPathError: If ``name`` leaves the work folder.
        WorkdirFullError: If the work folder has no room for ``data``.
    """
    path = resolve_in_workdir(workdir, name)
    owner = os.stat(workdir)
    try:
        with _open_beneath(workdir, name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as fd:
            if os.geteuid() == 0:
                os.fchown(fd, owner.st_uid, owner.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise WorkdirFullError(
                f"'{name}' ({len(data)} bytes) does not fit in the work folder: {error.strerror}. "
                "Delete files from the work folder or upload a smaller file."
            ) from error
        raise
    return path


def read_file(workdir: Path, name: str, max_bytes: int = DEFAULT_MAX_READ) -> bytes:
    """Read a file of the work folder.

    Raises:
        WorkdirPathError: If ``name`` leaves the work folder, does not exist or is not a file.
        KernelError: If the file is larger than ``max_bytes``.
    """
    with _open_beneath(workdir, name, os.O_RDONLY) as fd:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise KernelError(
                f"'{name}' is {size} bytes, over the {max_bytes}-byte download limit; "
                f"save a smaller file (compress or split it) from your code."
            )
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise KernelError(
            f"'{name}' grew over the {max_bytes}-byte download limit while being read; "
            "wait until the code writing it is done, then try again."
        )
    return data


def list_files(workdir: Path, max_files: int = 1000) -> list[FileInfo]:
    """The regular files under ``workdir`` (symbolic links skipped), sorted by name.

    Args:
        workdir: The session's work folder.
        max_files: Stop after this many files (code can create very many).
    """
    root = Path(os.path.realpath(workdir))
    found: list[FileInfo] = []
    for path, info in _walk(root, max_entries=max_files * 10):
        if stat.S_ISREG(info.st_mode):
            found.append(FileInfo(path.relative_to(root).as_posix(), info.st_size, info.st_mtime))
            if len(found) >= max_files:
                break
    return sorted(found, key=lambda file: file.name)


def folder_usage(workdir: Path, max_entries: int) -> tuple[int, int]:
    """Bytes allocated and entries found under ``workdir``, scanning at most ``max_entries``."""
    size = count = 0
    for _, info in _walk(Path(workdir), max_entries):
        size += info.st_blocks * 512
        count += 1
    return size, count


def _walk(root: Path, max_entries: int) -> Iterator[tuple[Path, os.stat_result]]:
    """Entries under ``root`` with their lstat, never following links, at most ``max_entries``."""
    stack, seen = [root], 0
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > max_entries:
                return
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
            yield Path(entry.path), info
