"""Files of a kernel on a gateway: its work folder, and upload, list and download through the kernel itself.

A Kernel Gateway has no contents API, so the app evaluates a small function in the kernel for each file
operation, in a namespace of its own (the user's variables are untouched, and no history is kept), and
moves the bytes as base64 in chunks. The answer comes back as a ``user_expressions`` value in the execute
reply on the shell channel, which the gateway does not rate-limit as it does IOPub output (1 MB/s by
default), and which code cannot print into. The names are checked as :func:`kernel.files.resolve_in_workdir`
checks them, inside the kernel against its real paths, and the errors are the same.
"""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Callable
from typing import Any

from kernel.errors import KernelError, WorkdirFullError, WorkdirPathError
from kernel.files import FileInfo

#: Bytes moved per request (base64 makes it a third bigger on the wire).
CHUNK_BYTES = 4 * 1024 * 1024
#: The function run in the kernel: ARGS in, RESULT (JSON text) out. The kernel's working folder is the work folder.
_SOURCE = r"""
import base64, errno, json, os, stat
def _answer():
    op, name = ARGS["op"], ARGS.get("name", "")
    root = os.path.realpath(os.getcwd())
    if op == "list":
        found, seen, stack = [], 0, [root]
        while stack and len(found) < ARGS["max_files"] and seen < ARGS["max_files"] * 10:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(info.st_mode) and len(found) < ARGS["max_files"]:
                    found.append([os.path.relpath(entry.path, root), info.st_size, info.st_mtime])
        return {"files": found, "root": root}
    parts = name.split("/")
    if not name or "\x00" in name or name.startswith(("/", "~")) or ".." in parts:
        return {"error": "name"}
    path = os.path.realpath(os.path.join(root, name))
    if path == root:
        return {"error": "folder"}
    if not path.startswith(root + os.sep):
        return {"error": "outside"}
    try:
        if op == "write":
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_TRUNC if ARGS["first"] else os.O_APPEND)
            fd = os.open(path, flags, 0o644)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return {"error": "notfile"}
                os.write(fd, base64.b64decode(ARGS["data"]))
            finally:
                os.close(fd)
            return {"path": path}
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return {"error": "notfile"}
            if info.st_size > ARGS["max_bytes"]:
                return {"error": "big", "size": info.st_size}
            os.lseek(fd, ARGS["offset"], 0)
            data = os.read(fd, ARGS["length"])
        finally:
            os.close(fd)
        return {"data": base64.b64encode(data).decode(), "size": info.st_size}
    except OSError as error:
        if error.errno == errno.ENOENT:
            return {"error": "missing"}
        if error.errno == errno.ELOOP:
            return {"error": "link"}
        if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return {"error": "full", "reason": error.strerror}
        return {"error": "os", "reason": str(error)}
RESULT = json.dumps(_answer())
"""


def setup_code(folder: str = "") -> str:
    """Code run in each new or restarted kernel: into its work folder, IPython's output cache off.

    On a plain Kernel Gateway every kernel starts in the gateway's own folder, so each session makes
    a folder of its own (``folder`` after a restart, so the files are kept); the cache is off as in the
    local sandbox (``inside.py``), so printing forever cannot fill the kernel's memory.
    """
    return (
        "def _workbench_setup(folder):\n"
        "    import os, tempfile\n"
        "    folder = folder or tempfile.mkdtemp(prefix='workbench-')\n"
        "    os.makedirs(folder, exist_ok=True)\n"
        "    os.chdir(folder)\n"
        "    shell = get_ipython()\n"
        "    shell.history_manager.db_log_output = False\n"
        "    shell.cache_size = 0\n"
        "    print(folder, end='')\n"
        f"_workbench_setup({folder!r})\n"
        "del _workbench_setup\n"
    )


#: Evaluates an expression in the kernel and returns the ``text/plain`` of its value.
Call = Callable[[str], str]


def kernel_expression(args: dict[str, Any]) -> str:
    """The expression to evaluate in the kernel for one file operation with ``args``: its value is JSON text."""
    return (
        f"(lambda ns: (__import__('builtins').exec({_SOURCE!r}, ns), ns['RESULT'])[1])({{'ARGS': {args!r}}})"
    )


def _answer(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Run one operation in the kernel and decode its answer."""
    text = call(kernel_expression(args))
    try:
        answer = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        answer = None
    if not isinstance(answer, dict):
        raise KernelError(
            "The kernel's answer to a file request is not valid; restart the kernel and try again."
        )
    return answer


def _check(answer: dict[str, Any], name: str, max_bytes: int = 0) -> dict[str, Any]:
    """Raise the error ``answer`` names, with the message the local work folder would give."""
    error = answer.get("error")
    messages = {
        "name": f"'{name}' is not a name inside the work folder (empty, absolute or with '..'); "
        "give a relative name such as 'data.csv'.",
        "folder": f"'{name}' is the work folder itself, not a file; give a file name such as 'data.csv'.",
        "outside": f"'{name}' is a symbolic link pointing outside the work folder; only files inside it "
        "can be read or written.",
        "notfile": f"'{name}' is not a regular file; only files can be read or written. Give the name of a file.",
        "missing": f"'{name}' does not exist in the work folder; list the files to check.",
        "link": f"'{name}' is a symbolic link; refused. Replace the link with a regular file.",
    }
    if error in messages:
        raise WorkdirPathError(messages[str(error)])
    if error == "full":
        raise WorkdirFullError(
            f"'{name}' does not fit in the kernel's work folder: {answer.get('reason')}. "
            "Delete files from the work folder or upload a smaller file."
        )
    if error == "big":
        raise KernelError(
            f"'{name}' is {answer.get('size')} bytes, over the {max_bytes}-byte download limit; "
            "save a smaller file (compress or split it) from your code."
        )
    if error:
        raise KernelError(f"The kernel could not handle '{name}': {answer.get('reason')}. Try again.")
    return answer


def upload(call: Call, name: str, data: bytes, max_bytes: int) -> str:
    """Write ``data`` as ``name`` in the kernel's work folder; return its path there.

    Raises:
        WorkdirPathError: If ``name`` leaves the work folder.
        WorkdirFullError: If ``data`` is over ``max_bytes`` or does not fit.
    """
    if len(data) > max_bytes:
        raise WorkdirFullError(
            f"'{name}' ({len(data)} bytes) does not fit in the work folder (cap {max_bytes} bytes). "
            "Delete files from the work folder or upload a smaller file."
        )
    path, offset = "", 0
    while True:
        chunk = data[offset : offset + CHUNK_BYTES]
        args = {"op": "write", "name": name, "first": offset == 0, "data": base64.b64encode(chunk).decode()}
        path = str(_check(_answer(call, args), name)["path"])
        offset += len(chunk)
        if offset >= len(data):
            return path


def download(call: Call, name: str, max_bytes: int) -> bytes:
    """The bytes of ``name`` in the kernel's work folder.

    Raises:
        WorkdirPathError: If ``name`` leaves the work folder, does not exist or is not a file.
        KernelError: If the file is larger than ``max_bytes``.
    """
    chunks: list[bytes] = []
    offset = 0
    while True:
        args = {"op": "read", "name": name, "offset": offset, "length": CHUNK_BYTES, "max_bytes": max_bytes}
        answer = _check(_answer(call, args), name, max_bytes)
        chunk = base64.b64decode(answer["data"])
        chunks.append(chunk)
        offset += len(chunk)
        if offset > max_bytes:
            raise KernelError(
                f"'{name}' grew over the {max_bytes}-byte download limit while being read; "
                "wait until the code writing it is done, then try again."
            )
        if not chunk or offset >= int(answer["size"]):
            return b"".join(chunks)


def list_remote(call: Call, max_files: int = 1000) -> list[FileInfo]:
    """The regular files in the kernel's work folder (symbolic links skipped), sorted by name."""
    answer = _check(_answer(call, {"op": "list", "max_files": max_files}), "")
    files = [FileInfo(str(name), int(size), float(mtime)) for name, size, mtime in answer["files"]]
    return sorted(files, key=lambda info: info.name)
