"""The host folders of one kernel: its work folder, its runtime folder, and their size cap.

Layout of a session (``base`` is a fresh temporary folder)::

    base/        a size-capped tmpfs when the app runs as root (see below), else a plain folder
      run/       the app's: connection file, log, passwd; bound READ-ONLY into the sandbox
      sockets/   the kernel's: its ZeroMQ ipc sockets; bound read-write into the sandbox
      work/      the work folder (unless the caller gave one); bound read-write into the sandbox

Nothing the kernel can write is trusted: ``base`` and ``run`` belong to the app and the kernel
user cannot create, replace or link anything in them, so the app never reads a file the kernel
chose. The app creates its files with ``O_EXCL | O_NOFOLLOW`` and gives them away with
``fchown`` on its own descriptor (:func:`create_file`, :func:`make_folder`), never by path.

When the app runs as root, ``base`` is a tmpfs mounted with ``size=`` and ``nr_inodes=``: the
kernel cannot write more than the cap in bytes or files, the app still sees every file at once
(to list and download), and files survive kernel restarts. Without root no mount is possible;
the caller then checks the folder's usage while code runs (:func:`kernel.files.folder_usage`).

The kernel runs as an unprivileged user, which may not be able to reach the Python install
(here the venv's base interpreter lives under ``/root``). Such folders are bind-mounted
read-only, once per app process, under ``/run/workbench-kernel/`` and bound from there into
the sandbox at their original path.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kernel.errors import KernelStartError

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MNT_DETACH = 2

#: Room on the session tmpfs beyond the work folder's cap: connection file, sockets, log.
RUN_BYTES = 8 * 1024 * 1024
#: Inodes on the session tmpfs beyond the work folder's cap (the runtime folder's few files).
RUN_INODES = 16
#: Where unreachable Python folders are made reachable (see the module docstring).
_SHARED_BINDS = Path("/run/workbench-kernel")


@dataclass
class SessionFolders:
    """The folders of one kernel session and what was mounted for them.

    Attributes:
        base: The session's private folder (removed by :meth:`cleanup`).
        run: The app's runtime folder (connection file, log, passwd), read-only in the sandbox.
        sockets: The kernel's ipc sockets, writable by the kernel.
        work: The work folder the code runs in.
        owns_work: The work folder was created here and is removed with the session.
        size_capped: The work folder lies on a size-capped tmpfs.
        mounts: Mounts made for this session, innermost last.
        work_source: Where bubblewrap binds the work folder from: ``work`` itself, or a bind
            mount of it under ``base`` when the sandbox user cannot reach a given folder.
    """

    base: Path
    run: Path
    sockets: Path
    work: Path
    owns_work: bool
    size_capped: bool = False
    mounts: list[Path] = field(default_factory=list)
    work_source: Path | None = None

    def cleanup(self) -> None:
        """Unmount what was mounted and delete the session folder (never a given work folder)."""
        for target in reversed(self.mounts):
            with contextlib.suppress(OSError):
                _umount(target)
        self.mounts.clear()
        if _has_mount_under(self.base):
            return  # never delete through a mount we could not remove
        shutil.rmtree(self.base, ignore_errors=True)


def prepare_folders(
    workdir: Path | None,
    owner: tuple[int, int] | None,
    workdir_bytes: int,
    workdir_files: int,
) -> SessionFolders:
    """Create the folders of a new session.

    Args:
        workdir: A work folder to use as it is, or None for a fresh one owned by the session.
        owner: ``(uid, gid)`` the kernel runs as when the app is root, else None.
        workdir_bytes: The cap on the work folder in bytes (enforced here only with ``owner``).
        workdir_files: The cap on the number of files and folders (same condition).

    Returns:
        The folders; the caller must call :meth:`SessionFolders.cleanup` at the end.
    """
    base = Path(tempfile.mkdtemp(prefix="workbench-kernel-"))
    folders = SessionFolders(
        base=base, run=base / "run", sockets=base / "sockets", work=base / "work", owns_work=workdir is None
    )
    if workdir is not None:
        folders.work = Path(workdir).resolve()
    try:
        if owner is not None:
            size = RUN_BYTES + (workdir_bytes if workdir is None else 0)
            options = f"size={size},nr_inodes={workdir_files + RUN_INODES},mode=0711,uid=0,gid=0"
            try:
                _mount("tmpfs", base, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
                folders.mounts.append(base)
                folders.size_capped = workdir is None
            except OSError:
                os.chmod(base, 0o711)  # no mount rights: a plain folder, checked while running
        # The kernel user must traverse run/ to read its connection file, and nothing more.
        make_folder(folders.run, None, 0o711 if owner is not None else 0o700)
        make_folder(folders.sockets, owner, 0o700)
        if workdir is None:
            make_folder(folders.work, owner, 0o700)
        elif not folders.work.is_dir():
            raise KernelStartError(
                f"The work folder {folders.work} does not exist. Create it or pass workdir=None."
            )
        if owner is not None and workdir is not None and not reachable_by(folders.work, *owner):
            # e.g. a folder under a private home: reach it through a bind mount in ``base``.
            (base / "given").mkdir(mode=0o755)
            _mount(str(folders.work), base / "given", None, _MS_BIND | _MS_NOSUID | _MS_NODEV, None)
            folders.mounts.append(base / "given")
            folders.work_source = base / "given"
    except BaseException:
        folders.cleanup()
        raise
    return folders


def make_folder(path: Path, owner: tuple[int, int] | None, mode: int) -> None:
    """Create a folder that must not exist yet; give it to ``owner`` through its descriptor."""
    os.mkdir(path, mode)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)  # the umask may have taken bits away
    finally:
        os.close(fd)


def create_file(
    path: Path,
    data: bytes = b"",
    owner: tuple[int, int] | None = None,
    mode: int = 0o600,
    *,
    keep_open: bool = False,
) -> int | None:
    """Create ``path`` afresh in a folder of the app, never through a link or into an existing file.

    Args:
        path: The file, in a folder only the app can write (a name there is removed first).
        data: The content.
        owner: ``(uid, gid)`` to give the file to, by ``fchown`` on the new descriptor.
        mode: Its permission bits.
        keep_open: Return the descriptor (opened for reading and appending) instead of closing it.

    Returns:
        The open descriptor when ``keep_open``, else None.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_RDWR | os.O_APPEND if keep_open else os.O_WRONLY
    fd = os.open(path, flags, mode)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    if keep_open:
        return fd
    os.close(fd)
    return None


def read_tail(fd: int, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of the regular file open as ``fd`` (b"" for anything else)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return b""
    start = max(info.st_size - max_bytes, 0)
    return os.pread(fd, info.st_size - start, start)


def reachable_by(path: Path, uid: int, gid: int) -> bool:
    """True if ``uid``/``gid`` may walk down to ``path`` and list it (mode bits only, no ACLs)."""
    target = Path(path)
    for depth in range(len(target.parts)):
        current = Path(*target.parts[: depth + 1])
        try:
            info = os.stat(current)
        except OSError:
            return False
        if info.st_uid == uid:
            bits = (info.st_mode >> 6) & 7
        elif info.st_gid == gid:
            bits = (info.st_mode >> 3) & 7
        else:
            bits = info.st_mode & 7
        needed = 5 if current == target else 1
        if stat.S_ISDIR(info.st_mode) and bits & needed != needed:
            return False
    return True


def shared_readonly_bind(source: Path) -> Path:
    """Bind ``source`` read-only under ``/run/workbench-kernel/`` (once) and return that path.

    Raises:
        KernelStartError: If the bind mount cannot be made (the app is not root).
    """
    digest = hashlib.sha1(str(source).encode()).hexdigest()[:12]
    target = _SHARED_BINDS / f"{source.name}-{digest}"
    if _is_mount_point(target):
        return target
    try:
        _SHARED_BINDS.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(_SHARED_BINDS, 0o755)
        target.mkdir(mode=0o755, exist_ok=True)
        _mount(str(source), target, None, _MS_BIND, None)
        try:
            _mount("none", target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID, None)
        except OSError:
            _umount(target)
            raise
    except OSError as error:
        raise KernelStartError(
            f"The sandbox user cannot read the Python install at {source}, and making it readable "
            f"through a read-only bind mount failed ({error.strerror}). Install Python in a folder "
            "every user can read (e.g. /usr or /opt), or run without the sandbox."
        ) from error
    return target


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount(source: str, target: Path, fstype: str | None, flags: int, data: str | None) -> None:
    result = _libc().mount(
        source.encode(),
        str(target).encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def _umount(target: Path) -> None:
    if _libc().umount2(str(target).encode(), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # not mounted (any more)
            raise OSError(code, os.strerror(code), str(target))


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            lines = mountinfo.read().splitlines()
    except OSError:
        return []
    # Field 5 is the mount point, with spaces and the like written as octal escapes.
    return [line.split()[4].encode().decode("unicode_escape") for line in lines if len(line.split()) > 4]


def _is_mount_point(path: Path) -> bool:
    return str(path) in _mount_points()


def _has_mount_under(path: Path) -> bool:
    prefix = str(path).rstrip("/") + "/"
    return any(point == str(path) or point.startswith(prefix) for point in _mount_points())
