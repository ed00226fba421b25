"""KernelSession against a real ipykernel in the real sandbox: outputs, time-outs, deaths, restarts.

The behaviour tests take ``either_session``: they run on a local kernel and on a Kernel Gateway's.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from kernel import KernelSession, SandboxLimits, sandbox, sandbox_available
from kernel.errors import KernelError, KernelStartError
from kernel.pool import AnyKernel
from tests.kernel.helpers import assert_usable, is_running

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


def test_the_sandbox_is_available_here() -> None:
    available, text = sandbox_available()
    assert available, f"bubblewrap must work for these tests: {text}"
    assert text.startswith("bubblewrap")


def test_stdout_stderr_and_result(either_session: AnyKernel) -> None:
    execution = either_session.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\n40 + 2")
    assert execution.stdout == "out\n"
    assert execution.stderr == "err\n"
    assert execution.result == "42"
    assert [o.kind for o in execution.outputs] == ["stream", "stream", "result"]
    assert execution.ok and execution.note == ""
    assert either_session.sandboxed == isinstance(either_session, KernelSession)


def test_error_has_name_value_and_a_plain_traceback(either_session: AnyKernel) -> None:
    execution = either_session.execute("def f():\n    return 1 / 0\nf()")
    assert execution.error is not None
    assert (execution.error.name, execution.error.value) == ("ZeroDivisionError", "division by zero")
    assert "return 1 / 0" in execution.error.traceback
    assert "\x1b" not in execution.error.traceback
    assert execution.for_model().endswith("ZeroDivisionError: division by zero")
    assert not execution.ok


def test_state_is_kept_between_runs(either_session: AnyKernel) -> None:
    either_session.execute("counter = 41")
    assert either_session.execute("counter + 1").result == "42"


def test_several_plots_in_one_cell_show_inline_in_order(either_session: AnyKernel) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "print('before')\n"
        "plt.figure(figsize=(4, 3), dpi=100); plt.plot([1, 2, 3])\n"
        "plt.show()\n"  # one shown explicitly, the next one flushed at the end of the cell
        "print('between')\n"
        "plt.figure(figsize=(2, 2), dpi=100); plt.plot([3, 1])\n"
    )
    execution = either_session.execute(code, timeout=60)
    assert execution.error is None, execution.for_model()
    assert len(execution.images) == 2
    sizes = [Image.open(io.BytesIO(png)).size for png in execution.images]
    assert sizes[0][0] > sizes[1][0]  # 4-inch figure first
    kinds = [o.kind for o in execution.outputs if o.kind != "result"]
    assert kinds == ["stream", "display", "stream", "display"]
    text = execution.for_model()
    assert text.index("before") < text.index("[image 1: ") < text.index("between") < text.index("[image 2: ")


def test_display_of_a_dataframe_keeps_html(either_session: AnyKernel) -> None:
    execution = either_session.execute("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    assert execution.outputs[-1].kind == "result"
    assert "<table" in execution.outputs[-1].data["text/html"]
    assert "a  b" in (execution.result or "")


def test_display_data_from_display_and_pillow(either_session: AnyKernel) -> None:
    code = "from PIL import Image\nfrom IPython.display import display\ndisplay(Image.new('RGB', (30, 20)))"
    execution = either_session.execute(code)
    assert [o.kind for o in execution.outputs] == ["display"]
    assert execution.for_model() == "[image 1: 30x20]"


def test_code_runs_in_the_work_folder(kernel_session: KernelSession) -> None:
    execution = kernel_session.execute("import os\nopen('made.txt', 'w').write('hi')\nos.getcwd()")
    assert execution.result == repr(str(kernel_session.workdir))
    assert (kernel_session.workdir / "made.txt").read_text() == "hi"


def test_time_out_interrupts_and_keeps_the_state(either_session: AnyKernel) -> None:
    either_session.execute("kept = 'yes'")
    started = time.monotonic()
    execution = either_session.execute("import time\nwhile True:\n    time.sleep(0.01)", timeout=1.0)
    assert time.monotonic() - started < 2.5
    assert execution.timed_out and not execution.restarted
    assert execution.error is not None and execution.error.name == "KeyboardInterrupt"
    assert "1 s time limit" in execution.for_model()
    assert either_session.execute("kept").result == "'yes'"


def test_a_swallowed_interrupt_leads_to_a_restart(either_fresh_session: AnyKernel) -> None:
    either_fresh_session.execute("lost = 1")
    code = "import time\nwhile True:\n    try:\n        time.sleep(0.01)\n    except KeyboardInterrupt:\n        pass"
    started = time.monotonic()
    execution = either_fresh_session.execute(code, timeout=1.0)
    assert time.monotonic() - started < 5
    assert execution.timed_out and execution.restarted
    assert "restarted" in execution.note and "lost" in execution.note
    assert "kernel was restarted" in execution.for_model()
    assert either_fresh_session.execute("lost").error is not None
    assert_usable(either_fresh_session)


def test_death_is_noticed_quickly_and_the_kernel_restarted(either_fresh_session: AnyKernel) -> None:
    local = isinstance(either_fresh_session, KernelSession)
    either_fresh_session.execute("lost = 1")
    started = time.monotonic()
    execution = either_fresh_session.execute("import os\nos._exit(3)", timeout=30)
    # Locally noticed within ~0.2 s; a gateway polls its kernels every 3 s (time_to_dead) and tells then.
    assert time.monotonic() - started < (4 if local else 15)
    assert execution.restarted and not execution.timed_out
    assert ("exited with code 3" if local else "died on the gateway") in execution.note
    assert either_fresh_session.execute("lost").error is not None
    assert_usable(either_fresh_session)


def test_a_kernel_that_died_between_runs_is_restarted_on_the_next_run(fresh_session: KernelSession) -> None:
    for process in fresh_session.processes():
        if process.ns_pid == 2:
            os.kill(process.pid, 9)
    deadline = time.monotonic() + 5
    while fresh_session.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not fresh_session.alive
    execution = fresh_session.execute("1 + 1")
    assert execution.restarted and execution.result == "2"
    assert "had stopped since the last run" in execution.note


def test_restart_and_interrupt_from_another_thread(either_fresh_session: AnyKernel) -> None:
    timer = threading.Timer(0.5, either_fresh_session.interrupt)
    timer.start()
    execution = either_fresh_session.execute("import time\ntime.sleep(30)", timeout=20)
    assert execution.error is not None and execution.error.name == "KeyboardInterrupt"
    assert not execution.timed_out and not execution.restarted

    either_fresh_session.execute("gone = 1")
    timer = threading.Timer(0.5, either_fresh_session.restart)
    timer.start()
    started = time.monotonic()
    execution = either_fresh_session.execute("import time\ntime.sleep(30)", timeout=20)
    timer.join()
    assert time.monotonic() - started < 5
    assert execution.restarted and "restarted on request" in execution.note
    assert either_fresh_session.execute("gone").error is not None
    either_fresh_session.restart()  # idle restart
    assert_usable(either_fresh_session)


def test_input_fails_at_once_instead_of_hanging(either_session: AnyKernel) -> None:
    started = time.monotonic()
    execution = either_session.execute("input('name? ')", timeout=10)
    assert time.monotonic() - started < 3
    assert execution.error is not None and execution.error.name == "StdinNotImplementedError"


def test_two_sessions_see_neither_variables_nor_files_of_the_other() -> None:
    with KernelSession(sandbox=True) as first, KernelSession(sandbox=True) as second:
        first.execute("secret = 'first'\nopen('first.txt', 'w').write('1')")
        assert first.workdir != second.workdir
        assert second.execute("secret").error is not None
        listing = second.execute("import os\nsorted(os.listdir('.'))").result
        assert listing == "[]"
        probe = second.execute(f"open({str(first.workdir / 'first.txt')!r}).read()")
        assert probe.error is not None and probe.error.name == "FileNotFoundError"
        pids = second.execute("import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())").result
        assert pids is not None and len(eval(pids)) <= 3  # init, the kernel, maybe a transient helper


def test_shutdown_removes_the_folders_and_stops_the_kernel() -> None:
    session = KernelSession(sandbox=True)
    workdir, processes = session.workdir, session.processes()
    assert {p.ns_pid for p in processes} >= {1, 2}
    session.shutdown()
    assert not session.alive
    assert not workdir.exists()
    assert not any(is_running(p.pid) for p in processes)
    with pytest.raises(KernelError, match="shut down"):
        session.execute("1")
    session.shutdown()  # twice is harmless


def test_a_given_work_folder_is_used_and_kept(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # the kernel runs as an unprivileged user when the tests run as root
    (tmp_path / "input.txt").write_text("data")
    with KernelSession(tmp_path, sandbox=True) as session:
        assert session.workdir == tmp_path.resolve()
        assert session.execute("open('input.txt').read()").result == "'data'"
    assert (tmp_path / "input.txt").exists()


def test_a_bad_timeout_is_refused(kernel_session: KernelSession) -> None:
    with pytest.raises(KernelError, match="positive number of seconds"):
        kernel_session.execute("1", timeout=0)


def test_without_the_sandbox_it_still_works_and_says_so() -> None:
    with KernelSession(sandbox=False) as session:
        assert not session.sandboxed and session.sandbox_reason
        assert session.execute("import os\nos.environ.get('HOME')").result == repr(
            str(session.workdir.parent / "sockets" / "home")
        )
        assert session.processes() == []


def test_without_a_tmpfs_the_work_folder_cap_is_checked_while_running() -> None:
    limits = SandboxLimits(workdir_bytes=5 * 1024 * 1024)
    with KernelSession(sandbox=False, limits=limits) as session:
        code = "import time\nfor i in range(100):\n    open(f'chunk{i}', 'wb').write(b'x' * 1024 * 1024)\n    time.sleep(0.05)"
        execution = session.execute(code, timeout=30)
        assert "went over its cap of 5 MiB" in execution.note
        assert len(list(session.workdir.iterdir())) < 50
        assert_usable(session)


def test_without_bubblewrap_sessions_run_unsandboxed_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox._probe.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    try:
        available, reason = sandbox_available()
        assert not available and "bubblewrap is not installed" in reason
        with pytest.raises(KernelStartError, match="required but cannot run"):
            KernelSession(sandbox=True)
        with KernelSession() as session:
            assert not session.sandboxed
            assert "bubblewrap is not installed" in session.sandbox_reason
            assert session.execute("1 + 1").result == "2"
    finally:
        sandbox._probe.cache_clear()  # the real probe runs again once `which` is restored
