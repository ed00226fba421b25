"""Escapes through the app (issue 24), each played as kernel code against the real sandbox.

The kernel user could write the session's runtime folder, and the app (root on a server) acted on
what it found there: it followed links, blocked on FIFOs and imported modules from the work folder.
Every test here plants what an attacker would and checks the app's side: what the user sees, who
owns host files, the limits seen from outside, and that other sessions still get kernels.
Run as root they use the real ``workbench-kernel`` user, as on a server.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kernel import KernelPool, KernelSession
from kernel.errors import KernelError
from tests.kernel.helpers import assert_usable

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0

#: Kernel code: the runtime folder the kernel was started from (it knows its connection file).
FIND_RUN = "import os, ipykernel.connect\nRUN = os.path.dirname(ipykernel.connect.get_connection_file())\n"


def link_in_run(name: str, target: str) -> str:
    """Kernel code that tries to replace ``run/NAME`` with a link to ``target`` (failures ignored)."""
    return (
        f"{FIND_RUN}path = os.path.join(RUN, {name!r})\n"
        "try:\n    os.unlink(path)\nexcept OSError:\n    pass\n"
        f"try:\n    os.symlink({target!r}, path)\nexcept OSError:\n    pass\n"
    )


def plant(name: str, source: str) -> str:
    """Kernel code writing ``source`` as a module file in the work folder (``pkg/__init__.py`` allowed)."""
    return f"os.makedirs(os.path.dirname({name!r}) or '.', exist_ok=True)\nopen({name!r}, 'w').write({source!r})\n"


def play(session: KernelSession, code: str) -> str:
    """Run attack code that ends by killing its kernel; return all the user is shown of the aftermath."""
    shown = []
    try:
        execution = session.execute(code + "\nos._exit(0)\n", timeout=30)
        shown += [execution.for_model(), execution.note]
        execution = session.execute("1 + 1", timeout=30)
        shown += [execution.for_model(), execution.note]
    except KernelError as error:
        shown.append(str(error))
    return "\n".join(shown)


@pytest.fixture
def victim() -> Iterator[KernelSession]:
    """Another session of the same app, whose secrets the attacker wants."""
    with KernelSession(sandbox=True) as session:
        yield session


@pytest.fixture
def root_only_file(tmp_path: Path) -> Path:
    """A host file only root may read, outside every sandbox."""
    secret = tmp_path / "root-only.txt"
    secret.write_text("ROOT-ONLY-SECRET-7d1f\n")
    secret.chmod(0o600)
    return secret


# --- 1. the app reads any host file and shows it ------------------------------------------------
@pytest.mark.parametrize("target", ["environ", "root-only file", "other session's connection file"])
def test_a_log_linked_to_a_host_file_never_shows_it(
    fresh_session: KernelSession, victim: KernelSession, root_only_file: Path, target: str
) -> None:
    path, secret = {
        "environ": ("/proc/self/environ", _app_environ_entry()),
        "root-only file": (str(root_only_file), "ROOT-ONLY-SECRET-7d1f"),
        "other session's connection file": (
            str(victim.connection_file),
            json.loads(victim.connection_file.read_text())["key"],
        ),
    }[target]
    # The planted resource.py runs at the next launch (before main() on the old launch code):
    # it links the log to the host file and exits, so the app showed "the log" in its error.
    relink = link_in_run("kernel.log", path) + "os._exit(3)\n"
    code = link_in_run("kernel.log", path) + plant("resource.py", relink)
    shown = play(fresh_session, code)
    assert secret not in shown
    assert_usable(victim)


def _app_environ_entry() -> str:
    """The longest ``NAME=value`` of this process's own environment, as /proc/self/environ holds it."""
    entries = Path("/proc/self/environ").read_bytes().split(b"\0")
    return max((e.decode("utf-8", "replace") for e in entries if b"=" in e), key=len)


def test_exec_never_prints_the_apps_environment(tmp_path: Path) -> None:
    """The reported repro: ``workbench exec`` of a planted resource.py printed WORKBENCH_PASSWORD."""
    script = tmp_path / "attack.py"
    relink = link_in_run("kernel.log", "/proc/self/environ") + "os._exit(3)\n"
    script.write_text(
        link_in_run("kernel.log", "/proc/self/environ") + plant("resource.py", relink) + "os._exit(0)\n"
    )
    marker = "hunter2-" + os.urandom(6).hex()
    env = {**os.environ, "WORKBENCH_PASSWORD": marker, "OPENAI_API_KEY": marker, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "exec", str(script)],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert marker not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


# --- 2. the app hands any host file to the kernel user ------------------------------------------
@pytest.mark.skipif(not AS_ROOT, reason="the kernel runs as another user only when the app is root")
def test_a_connection_file_linked_to_a_root_file_is_not_chowned(
    fresh_session: KernelSession, root_only_file: Path
) -> None:
    before = root_only_file.stat()
    play(fresh_session, link_in_run("kernel.json", str(root_only_file)))
    after = root_only_file.stat()
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (0, before.st_gid, 0o600)
    assert root_only_file.read_text() == "ROOT-ONLY-SECRET-7d1f\n"
    assert_usable(fresh_session)


def test_the_runtime_folder_is_read_only_in_the_sandbox(fresh_session: KernelSession) -> None:
    code = FIND_RUN + (
        "import errno\nresults = {}\n"
        "for name in ('kernel.json', 'kernel.log', 'passwd', 'new-file'):\n"
        "    try:\n        open(os.path.join(RUN, name), 'a').close()\n        results[name] = 0\n"
        "    except OSError as error:\n        results[name] = error.errno\n"
        "results"
    )
    results = fresh_session.execute(code).result
    assert results is not None and ": 0" not in results, results


# --- 3. the limits can be switched off -----------------------------------------------------------
FAKE_RESOURCE = """
import importlib.machinery, importlib.util, os, sys
spec = importlib.machinery.PathFinder.find_spec('resource', [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()])
real = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)
globals().update({k: v for k, v in vars(real).items() if not k.startswith('__')})
def setrlimit(*args):
    pass
"""


def marker_source(name: str) -> str:
    """A planted module that leaves ``imported-NAME`` in the work folder if imported before the limits."""
    return (
        "import os\n"
        "if 'unlimited' in [l for l in open('/proc/self/limits') if l.startswith('Max address space')][0]:\n"
        f"    open(os.path.join(os.getcwd(), 'imported-{name}'), 'w').close()\n"
    )


def kernel_limits(session: KernelSession) -> dict[str, list[str]]:
    """The kernel's soft and hard limits as the host sees them in /proc/PID/limits, by row name."""
    pid = next(process.pid for process in session.processes() if process.ns_pid == 2)
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:].split()[:2] for row in rows}


@pytest.mark.parametrize(
    "module",
    [
        "resource.py",
        "site.py",
        "sitecustomize.py",
        "usercustomize.py",
        "jupyter_client/__init__.py",
        "time.py",
    ],
)
def test_planted_modules_never_run_before_the_limits(fresh_session: KernelSession, module: str) -> None:
    source = marker_source(module.split("/")[0]) + (FAKE_RESOURCE if module == "resource.py" else "")
    play(fresh_session, "import os\n" + plant(module, source))
    try:
        assert not list(fresh_session.workdir.glob("imported-*"))
        limits = kernel_limits(fresh_session)
        assert limits["Max address space"] == [str(fresh_session.limits.memory_bytes)] * 2
        assert limits["Max processes"] == [str(fresh_session.limits.processes)] * 2
        assert_usable(fresh_session)
    finally:
        for path in fresh_session.workdir.iterdir():
            subprocess.run(["rm", "-rf", str(path)], check=False)


# --- 4. one kernel blocks all others -------------------------------------------------------------
def test_fifos_for_the_connection_file_and_log_block_no_other_session() -> None:
    """Session A swaps its connection file and log for FIFOs (again at its next launch) and dies;
    session B must still get a kernel, started while A's restart is under way."""
    fifos = FIND_RUN + (
        "for name in ('kernel.json', 'kernel.log'):\n"
        "    path = os.path.join(RUN, name)\n"
        "    try:\n        os.unlink(path)\n    except OSError:\n        pass\n"
        "    try:\n        os.mkfifo(path)\n    except OSError:\n        pass\n"
    )
    code = fifos + plant("resource.py", fifos + "os._exit(3)\n")
    pool = KernelPool(max_kernels=3, idle_timeout=600, warm_spare=False)
    outcome: list[str] = []
    try:
        attacker = pool.get("attacker")
        assert isinstance(attacker, KernelSession)
        thread = threading.Thread(target=lambda: outcome.append(play(attacker, code)), daemon=True)
        thread.start()
        time.sleep(2.0)  # the attacker's kernel has died and is being restarted
        started = time.monotonic()
        other = pool.get("other")
        assert other.execute("6 * 7", timeout=30).result == "42"
        assert time.monotonic() - started < 90  # generous bound: a loaded 2-core machine
        thread.join(timeout=90)
        assert not thread.is_alive(), "the attacker's restart never ended"
    finally:
        pool.shutdown_all()


def test_a_start_over_its_timeout_is_abandoned_and_leaves_no_kernel() -> None:
    def sandboxes() -> set[int]:
        running = set()
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if process.name() == "bwrap" and process.status() != psutil.STATUS_ZOMBIE:
                    running.add(process.pid)
        return running

    before = sandboxes()
    with pytest.raises(KernelError, match=r"did not start within 0\.01 s and was abandoned"):
        KernelSession(sandbox=True, start_timeout=0.01)
    deadline = time.monotonic() + 30
    while sandboxes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sandboxes() - before, "the abandoned start left a kernel running"


# --- 5. smaller holes ----------------------------------------------------------------------------
def test_a_40_mb_print_is_cut_and_later_runs_still_show_output(fresh_session: KernelSession) -> None:
    big = fresh_session.execute("print('x' * 40_000_000)", timeout=60)
    assert "more characters cut" in big.stdout + big.stderr
    later = fresh_session.execute("print('after')\n1 + 1", timeout=30)
    assert later.stdout == "after\n" and later.result == "2", later.for_model()


BOMB = "from PIL import Image as I\nimport io\nb = io.BytesIO()\nI.new('1', (20000, 20000)).save(b, 'PNG')\n"


@pytest.mark.parametrize(
    "make",
    [BOMB + "png = b.getvalue()", "png = b'\\x89PNG\\r\\n\\x1a\\n' + b'junk' * 100"],
    ids=["bomb", "junk"],
)
def test_image_bombs_become_a_note(kernel_session: KernelSession, make: str) -> None:
    code = (
        make
        + "\nfrom IPython.display import Image, display\ndisplay(Image(data=png, format='png'))\nprint('after')"
    )
    execution = kernel_session.execute(code, timeout=60)
    assert execution.images == []
    assert "[image dropped:" in execution.for_model()
    assert "after" in execution.stdout
    kernel_session.execute("png = b = None")


def test_exec_prints_a_note_for_an_image_bomb(tmp_path: Path) -> None:
    script = tmp_path / "bomb.py"
    script.write_text(
        BOMB + "from IPython.display import Image, display\ndisplay(Image(data=b.getvalue(), format='png'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "exec", str(script)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "image dropped" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("family", "expected"),
    [("AF_VSOCK", errno.EAFNOSUPPORT), ("AF_NETLINK", errno.EOPNOTSUPP), ("AF_PACKET", errno.EAFNOSUPPORT)],
)
def test_socket_families_outside_unix_and_ip_are_refused(
    kernel_session: KernelSession, family: str, expected: int
) -> None:
    code = (
        "import socket\ntry:\n"
        f"    socket.socket(socket.{family}, socket.SOCK_RAW if '{family}' != 'AF_VSOCK' else socket.SOCK_STREAM).close()\n"
        "    result = 0\nexcept OSError as error:\n    result = error.errno\nresult"
    )
    assert kernel_session.execute(code).result == str(expected)


SYSCALLS = {  # name: (x86-64 number, arguments)
    "io_uring_setup": (425, "1, ctypes.byref(ctypes.create_string_buffer(120))"),
    "ptrace": (101, "0, 0, 0, 0"),  # PTRACE_TRACEME
    "keyctl": (250, "0, -1, 0"),  # KEYCTL_GET_KEYRING_ID of the thread keyring
    "bpf": (321, "0, 0, 0"),
    "unshare": (272, "0x00020000"),  # CLONE_NEWNS
    "perf_event_open": (298, "0, 0, -1, -1, 0"),
    "userfaultfd": (323, "0"),
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86-64's")
@pytest.mark.parametrize("name", list(SYSCALLS))
def test_denied_syscalls_fail_with_eperm(kernel_session: KernelSession, name: str) -> None:
    number, args = SYSCALLS[name]
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
        f"rc = libc.syscall({number}, {args})\n(rc, ctypes.get_errno())"
    )
    assert kernel_session.execute(code).result == f"(-1, {errno.EPERM})"


def test_threads_and_subprocesses_still_work_under_the_filter(kernel_session: KernelSession) -> None:
    code = (
        "import threading, subprocess, socket\nt = threading.Thread(target=lambda: None)\nt.start(); t.join()\n"
        "a, b = socket.socketpair()\n(subprocess.run(['true']).returncode, a.family.name)"
    )
    assert kernel_session.execute(code).result == "(0, 'AF_UNIX')"
