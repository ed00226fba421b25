"""Launching ipykernel inside bubblewrap: the limits, the command line and the kernel manager.

The kernel process tree is::

    app (jupyter_client KernelManager)
    └── bwrap                      as an unprivileged uid when the app is root (Popen user=)
        └── bwrap (pid 1)          new user, pid, net, ipc, uts, cgroup and mount namespaces
            └── python -I -c LAUNCH   seccomp filter on; sets the rlimits, then runs ipykernel (pid 2)

Choices forced by the traps listed in issue 4:

- interrupts go as ``interrupt_request`` messages (kernelspec ``interrupt_mode: "message"``):
  jupyter_client's SIGINT to the process group would kill bwrap;
- ``--clearenv`` keeps ``JPY_PARENT_PID`` (and every host secret) out: inside a PID namespace
  ipykernel would see a foreign parent and exit;
- the network namespace has no route to the app, so ZeroMQ uses the ``ipc`` transport in a
  sockets folder bound in; the connection file is given to the sandbox user (``fchown``) in the
  app's runtime folder, bound read-only (issue 24: nothing the kernel can write is trusted);
- the launch code runs as ``python -I``: the work folder is not on ``sys.path`` and no
  ``PYTHON*`` variable counts, so a planted ``resource.py`` or ``site.py`` is never imported
  before the limits are set (and the session checks them in ``/proc/PID/limits`` after every start);
- ``--tmpfs /tmp`` comes before the binds of the runtime and work folders, which often lie in
  ``/tmp`` and would otherwise be hidden;
- no ``preexec_fn``: the uid switch is Popen's ``user=``/``group=``/``extra_groups=`` and the
  rlimits are set by the launch code inside the sandbox. RLIMIT_NPROC set there counts per user
  namespace, so each kernel has its own process budget.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.connect import port_names
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from traitlets import Bool, Instance

from kernel.errors import KernelStartError
from kernel.folders import SessionFolders, create_file, reachable_by, shared_readonly_bind
from kernel.seccomp import seccomp_fd, seccomp_program

MIB = 1024 * 1024
GIB = 1024 * MIB

#: The user the kernel runs as when the app is root; created by the setup script if wanted.
SANDBOX_USER = "workbench-kernel"
#: ``nobody``/``nogroup``, the fallback when :data:`SANDBOX_USER` does not exist.
NOBODY = (65534, 65534)
#: Host files the kernel may read; /etc/shadow, /etc/passwd and the rest stay out.
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "mime.types", "fonts")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one kernel.

    Attributes:
        memory_bytes: Address space per process (RLIMIT_AS). Counts reservations, not use: numpy
            with one BLAS thread starts at ~0.6 GiB of address space.
        cpu_seconds: CPU time per process over the kernel's whole life (RLIMIT_CPU); beyond it
            the kernel is killed and restarted.
        processes: Processes and threads of the sandbox user inside this kernel (RLIMIT_NPROC).
        file_bytes: Size of any one file written (RLIMIT_FSIZE).
        open_files: Open file descriptors per process (RLIMIT_NOFILE).
        workdir_bytes: Size of the work folder (a tmpfs cap when the app is root).
        workdir_files: Files and folders in the work folder (same condition).
        tmp_bytes: Size of the sandbox's private /tmp and /dev/shm (each, in memory).
    """

    memory_bytes: int = 2 * GIB
    cpu_seconds: int = 3600
    processes: int = 64
    file_bytes: int = 64 * MIB
    open_files: int = 512
    workdir_bytes: int = 256 * MIB
    workdir_files: int = 20_000
    tmp_bytes: int = 64 * MIB

    def rlimits(self, with_nproc: bool) -> list[tuple[str, int]]:
        """The ``resource`` limits to set, as ``(RLIMIT_NAME, value)`` pairs."""
        pairs = [
            ("RLIMIT_AS", self.memory_bytes),
            ("RLIMIT_CPU", self.cpu_seconds),
            ("RLIMIT_FSIZE", self.file_bytes),
            ("RLIMIT_NOFILE", self.open_files),
            ("RLIMIT_CORE", 0),
        ]
        return [*pairs, ("RLIMIT_NPROC", self.processes)] if with_nproc else pairs


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str, bool]:
    """Run bubblewrap once: (works, version or reason, supports --disable-userns)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap is not installed (apt-get install bubblewrap)", False
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        base = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/"]
        failure = ""
        for extra in (["--disable-userns"], []):
            probe = subprocess.run(
                [*base, *extra, "true"], capture_output=True, text=True, timeout=10, check=False,
                **_user_kwargs(sandbox_owner()),
            )  # fmt: skip
            if probe.returncode == 0:
                return True, version or "bubblewrap", bool(extra)
            failure = failure or probe.stderr.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"bubblewrap could not run: {error}", False
    return False, f"bubblewrap cannot create namespaces here: {failure or 'unknown error'}", False


def sandbox_available() -> tuple[bool, str]:
    """Whether kernels can run under bubblewrap here.

    Returns:
        ``(True, "bubblewrap 0.8.0")``, or ``(False, reason)``; then kernels run NOT sandboxed.
    """
    works, text, _ = _probe()
    return works, text


def sandbox_owner() -> tuple[int, int] | None:
    """``(uid, gid)`` the kernel runs as when the app is root, else None (the app's own user)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        return NOBODY
    return entry.pw_uid, entry.pw_gid


def _user_kwargs(owner: tuple[int, int] | None) -> dict[str, Any]:
    """Popen arguments that switch to ``owner`` without a preexec_fn."""
    if owner is None:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}


def python_roots() -> list[Path]:
    """Folders holding the interpreter and its packages that are not under /usr."""
    candidates = [
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    ]
    roots: list[Path] = []
    for path in candidates:
        if path.parts[:2] == ("/", "usr") or path in roots:
            continue
        if not any(path.is_relative_to(root) for root in roots):
            roots = [root for root in roots if not root.is_relative_to(path)] + [path]
    return roots


def kernel_env(home: str, workdir: Path) -> dict[str, str]:
    """The whole environment of the kernel: nothing comes from the app."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PWD": str(workdir),
        "VIRTUAL_ENV": sys.prefix,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "IPYTHONDIR": f"{home}/.ipython",
        # One BLAS/OpenMP thread: each thread costs address space and a process slot.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


#: Characters of stream output the kernel sends per flush (0.2 s); the rest is counted and
#: replaced by a marker, so code printing forever neither fills the kernel's memory nor
#: floods the app, and an interrupt gets through at once.
STREAM_MESSAGE_CHARS = 1024 * 1024


def launch_code(limits: SandboxLimits, with_nproc: bool) -> str:
    """Python run as ``python -I -B -c`` in the sandbox: :mod:`kernel.inside` and a call to its main."""
    source = Path(__file__).with_name("inside.py").read_text(encoding="utf-8")
    return f"{source}\nmain({limits.rlimits(with_nproc)!r}, {STREAM_MESSAGE_CHARS})\n"


#: Where the bwrap command line takes the seccomp descriptor, replaced at each launch.
SECCOMP_FD_ARG = "{seccomp_fd}"

#: ipykernel options: no history database (HOME is a small tmpfs), no output colours.
KERNEL_ARGS = ["-f", "{connection_file}", "--HistoryManager.enabled=False", "--colors=nocolor"]


def bwrap_argv(
    folders: SessionFolders, limits: SandboxLimits, owner: tuple[int, int] | None, env: dict[str, str]
) -> list[str]:
    """The bubblewrap command line up to and including ``--`` (the command follows)."""
    works, reason, disable_userns = _probe()
    if not works:
        raise KernelStartError(
            f"The sandbox cannot start: {reason}. Install bubblewrap and allow unprivileged user "
            "namespaces, or run kernels without the sandbox."
        )
    seccomp_program()  # fail here, with the reason, when the filter cannot be built
    argv = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    argv += ["--seccomp", SECCOMP_FD_ARG]
    argv += ["--disable-userns"] if disable_userns else []
    # --setenv acts in order, so it must follow --clearenv.
    argv += ["--hostname", "sandbox", "--clearenv"]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for name in _ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--ro-bind", str(folders.run / "passwd"), "/etc/passwd"]
    argv += ["--ro-bind", str(folders.run / "group"), "/etc/group"]
    tmp_size = str(limits.tmp_bytes)
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", tmp_size, "--tmpfs", "/dev/shm"]
    argv += ["--remount-ro", "/dev", "--size", tmp_size, "--tmpfs", "/tmp"]
    for root in python_roots():
        source = root
        if owner is not None and not reachable_by(root, *owner):
            source = shared_readonly_bind(root)
        argv += ["--ro-bind", str(source), str(root)]
    # After --tmpfs /tmp: these folders often live in /tmp. run/ is the app's: read-only.
    argv += ["--ro-bind", str(folders.run), str(folders.run)]
    argv += ["--bind", str(folders.sockets), str(folders.sockets)]
    work_source = folders.work_source or folders.work
    argv += ["--bind", str(work_source), str(folders.work), "--chdir", str(folders.work)]
    return [*argv, "--remount-ro", "/", "--"]


def write_identity_files(folders: SessionFolders, owner: tuple[int, int] | None) -> None:
    """Write the sandbox's /etc/passwd and /etc/group (one user, ``sandbox``)."""
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    create_file(
        folders.run / "passwd", f"sandbox:x:{uid}:{gid}:sandbox:/tmp:/usr/sbin/nologin\n".encode(), mode=0o644
    )
    create_file(folders.run / "group", f"sandbox:x:{gid}:\n".encode(), mode=0o644)


class FixedSpecManager(KernelSpecManager):
    """A kernelspec manager that knows exactly one spec, built in code (no kernel.json on disk)."""

    spec = Instance(KernelSpec)

    def get_kernel_spec(self, kernel_name: str, *args: Any, **kwargs: Any) -> KernelSpec:
        """Return the one spec, whatever the name."""
        return self.spec

    def find_kernel_specs(self) -> dict[str, str]:
        """No spec folders on disk."""
        return {}


class SandboxKernelManager(KernelManager):
    """A KernelManager that writes its connection file safely and launches under seccomp.

    jupyter_client's own ``write_connection_file`` returns early when the file "exists" and its
    callers ``chown`` by path; here the file is always created afresh (``O_EXCL | O_NOFOLLOW``)
    in the app's runtime folder and given to the kernel's user through its descriptor.
    """

    owner = Instance(tuple, allow_none=True)
    seccomp = Bool(False)

    def write_connection_file(self, **kwargs: Any) -> None:
        """Write the connection file afresh, readable by the kernel's user only."""
        for number, name in enumerate(port_names, 1):
            if getattr(self, name) <= 0:
                setattr(self, name, number)  # ipc "ports" are file name suffixes
        info = {name: getattr(self, name) for name in port_names}
        info.update(
            ip=self.ip,
            key=self.session.key.decode(),
            transport=self.transport,
            signature_scheme=self.session.signature_scheme,
            kernel_name=self.kernel_name,
            **kwargs,
        )
        create_file(Path(self.connection_file), json.dumps(info, indent=2).encode(), self.owner, 0o400)
        self._connection_file_written = True

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Launch with a fresh descriptor holding the seccomp filter (bwrap reads it once)."""
        if not self.seccomp:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            return
        fd = seccomp_fd()
        try:
            command = [str(fd) if part == SECCOMP_FD_ARG else part for part in kernel_cmd]
            await super()._async_launch_kernel(command, **kw, pass_fds=(fd,))
        finally:
            os.close(fd)


def make_manager(
    folders: SessionFolders, limits: SandboxLimits, sandboxed: bool, owner: tuple[int, int] | None
) -> tuple[SandboxKernelManager, dict[str, Any]]:
    """Build the kernel manager and the keyword arguments for its ``start_kernel``.

    The arguments hold the descriptor of the kernel's log (its own stdout and stderr), created
    in the app's runtime folder; the caller closes ``kwargs["stdout"]`` when the session ends.
    """
    home = "/tmp" if sandboxed else str(folders.sockets / "home")
    env = kernel_env(home, folders.work)
    # -I: no work folder on sys.path, no user site, no PYTHON* variables; -B: no .pyc files written.
    python = [sys.executable, "-I", "-B", "-c", launch_code(limits, with_nproc=sandboxed), *KERNEL_ARGS]
    if sandboxed:
        write_identity_files(folders, owner)
        argv = [*bwrap_argv(folders, limits, owner, env), *python]
    else:
        os.makedirs(home, mode=0o700, exist_ok=True)
        argv = python
    spec = KernelSpec(
        argv=argv,
        env={},
        display_name="Workbench (sandboxed)" if sandboxed else "Workbench (NOT sandboxed)",
        language="python",
        interrupt_mode="message",
        metadata={},
    )
    manager = SandboxKernelManager(
        kernel_spec_manager=FixedSpecManager(spec=spec),
        kernel_name="workbench",
        transport="ipc",
        ip=str(folders.sockets / "kernel"),
        connection_file=str(folders.run / "kernel.json"),
        owner=owner if sandboxed else None,
        seccomp=sandboxed,
    )
    manager.shutdown_wait_time = 1.0
    log = create_file(folders.run / "kernel.log", keep_open=True)
    start_kwargs: dict[str, Any] = {
        # Outside the sandbox bwrap needs only PATH; inside, --clearenv/--setenv decide.
        "env": {"PATH": "/usr/bin:/bin"} if sandboxed else env,
        "cwd": str(folders.work),
        "stdout": log,
        "stderr": subprocess.STDOUT,
        **(_user_kwargs(owner) if sandboxed else {}),
    }
    return manager, start_kwargs
