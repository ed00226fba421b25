"""Kernels on a real Jupyter Kernel Gateway: files through the kernel, the pool, limits, and the faults.

The behaviour tests of tests/kernel/test_kernel_session.py run on gateway kernels too (``either_session``);
here are the files (on both kinds), the pool on a gateway, and what only a gateway can do wrong: a wrong
token, no gateway, a gateway killed mid-run, a kernel culled by the gateway, a dropped websocket.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kernel import GatewayConfig, GatewaySession, KernelPool, KernelSession, SandboxLimits
from kernel.errors import (
    KernelError,
    KernelGatewayError,
    KernelLimitError,
    WorkdirFullError,
    WorkdirPathError,
)
from kernel.gateway_client import GatewayRest
from kernel.pool import AnyKernel
from tests.e2e.streamlit_server import free_port
from tests.kernel.helpers import assert_usable
from tests.kernel.kernel_gateway import RunningGateway, run_kernel_gateway

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def kernel_known(gateway: RunningGateway, kernel_id: str) -> bool:
    """Whether the gateway still has the kernel ``kernel_id``."""
    return GatewayRest(gateway.config).request("GET", f"/api/kernels/{kernel_id}") is not None


# --- files, on both kinds -----------------------------------------------------------------------
def test_upload_list_and_download_round_trip(either_session: AnyKernel) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)  # over one 4 MiB chunk of the gateway's transfer
    path = either_session.save_file("blob.bin", data)
    assert str(path).endswith("/blob.bin")
    execution = either_session.execute(
        "import hashlib\nhashlib.sha256(open('blob.bin', 'rb').read()).hexdigest()"
    )
    import hashlib

    assert execution.result == repr(hashlib.sha256(data).hexdigest())
    either_session.execute("open('made.txt', 'w').write('made by code')")
    names = {info.name: info.size for info in either_session.list_files()}
    assert names["blob.bin"] == len(data) and names["made.txt"] == 12
    assert either_session.read_file("made.txt") == b"made by code"
    assert either_session.read_file("blob.bin") == data


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "not"), ("/etc/passwd", "absolute|relative"), ("../x", r"\.\."), ("missing.txt", "does not exist")],
)
def test_bad_names_are_refused_alike(either_session: AnyKernel, name: str, message: str) -> None:
    with pytest.raises(WorkdirPathError, match=message):
        either_session.read_file(name)


def test_links_out_of_the_work_folder_are_refused(either_session: AnyKernel) -> None:
    either_session.execute("import os\nos.path.lexists('out') or os.symlink('/etc', 'out')")
    with pytest.raises(WorkdirPathError, match="outside the work folder"):
        either_session.read_file("out/hostname")
    with pytest.raises(WorkdirPathError, match="outside the work folder"):
        either_session.save_file("out/planted", b"x")


def test_a_file_over_the_download_limit_is_refused(either_session: AnyKernel) -> None:
    either_session.execute("open('big.txt', 'w').write('x' * 2000)")
    with pytest.raises(KernelError, match="over the 1000-byte download limit"):
        either_session.read_file("big.txt", max_bytes=1000)


def test_an_upload_over_the_work_folder_cap_is_refused(kernel_gateway: RunningGateway) -> None:
    with GatewaySession(kernel_gateway.config, limits=SandboxLimits(workdir_bytes=1000)) as session:
        with pytest.raises(WorkdirFullError, match="does not fit"):
            session.save_file("big.bin", b"x" * 1001)
        assert session.list_files() == []


# --- what the gateway is asked for ------------------------------------------------------------
def test_the_limits_and_kernel_variables_go_with_the_start_request(kernel_gateway: RunningGateway) -> None:
    config = GatewayConfig(
        kernel_gateway.config.url,
        token=kernel_gateway.config.token,
        kernel_name=kernel_gateway.config.kernel_name,
        env={"KERNEL_CPUS_LIMIT": "1"},
    )
    limits = SandboxLimits(memory_bytes=3 * 1024**3)
    with GatewaySession(config, limits=limits) as session:
        got = session.execute("import os\nos.environ['KERNEL_MEMORY_LIMIT'], os.environ['KERNEL_CPUS_LIMIT']")
        assert got.result == repr((str(3 * 1024**3), "1"))
        assert not session.sandboxed and kernel_gateway.config.where in session.sandbox_reason
        assert session.execute("import os\nos.getcwd()").result == repr(str(session.workdir))


# --- the pool on a gateway ---------------------------------------------------------------------
@pytest.fixture
def gateway_pool(kernel_gateway: RunningGateway) -> Iterator[KernelPool]:
    pool = KernelPool(max_kernels=2, idle_timeout=600, gateway=kernel_gateway.config)
    yield pool
    pool.shutdown_all()


def test_the_pool_gives_each_session_its_own_gateway_kernel_capped_and_freed(
    gateway_pool: KernelPool, kernel_gateway: RunningGateway
) -> None:
    alice, bob = gateway_pool.get("alice"), gateway_pool.get("bob")
    assert isinstance(alice, GatewaySession) and isinstance(bob, GatewaySession)
    alice.execute("secret = 1\nopen('alice.txt', 'w').write('a')")
    assert bob.execute("secret").error is not None
    assert [info.name for info in bob.list_files()] == []
    with pytest.raises(KernelLimitError, match="All 2 kernels are in use"):
        gateway_pool.get("carol")
    kernel_id = alice.kernel_id
    gateway_pool.release("alice")
    assert not alice.alive and not kernel_known(kernel_gateway, kernel_id)
    assert_usable(gateway_pool.get("carol"))


def test_idle_gateway_kernels_are_reaped(kernel_gateway: RunningGateway) -> None:
    pool = KernelPool(max_kernels=2, idle_timeout=0.5, warm_spare=False, gateway=kernel_gateway.config)
    try:
        session = pool.get("idle")
        assert isinstance(session, GatewaySession)
        time.sleep(0.7)
        assert pool.reap_idle() == ["idle"]
        assert not session.alive and not kernel_known(kernel_gateway, session.kernel_id)
    finally:
        pool.shutdown_all()


# --- faults --------------------------------------------------------------------------------------
def test_a_wrong_token_is_refused_with_what_to_do(kernel_gateway: RunningGateway) -> None:
    config = GatewayConfig(
        kernel_gateway.config.url, token="wrong", kernel_name=kernel_gateway.config.kernel_name
    )
    with pytest.raises(KernelGatewayError, match="refused the token") as raised:
        GatewaySession(config)
    assert "WORKBENCH_KERNEL_GATEWAY_TOKEN" in str(raised.value) and "wrong" not in str(raised.value)


def test_no_gateway_at_the_address_says_so() -> None:
    with pytest.raises(KernelGatewayError, match="cannot be reached") as raised:
        GatewaySession(GatewayConfig(f"http://127.0.0.1:{free_port()}", token="t"))
    assert "WORKBENCH_KERNEL_GATEWAY" in str(raised.value)


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(KernelGatewayError, match="not an http"):
        GatewayConfig("127.0.0.1:8888")


def test_a_gateway_killed_mid_run_is_reported_and_a_new_one_serves(tmp_path: Path) -> None:
    with run_kernel_gateway(tmp_path / "first") as gateway:
        session = GatewaySession(gateway.config, start_timeout=30)
        session.execute("kept = 1")
        threading.Timer(1.0, gateway.process.kill).start()
        started = time.monotonic()
        with pytest.raises(KernelGatewayError, match="dropped during the run") as raised:
            session.execute("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout=60)
        assert time.monotonic() - started < 20
        assert "cannot be reached" in str(raised.value)
        assert not session.alive
        with pytest.raises(KernelGatewayError, match="cannot be reached"):
            session.execute("1")
    # The same address comes back (the gateway was restarted): the session starts a new kernel there.
    with run_kernel_gateway(tmp_path / "second", port=gateway.port, token=gateway.config.token):
        execution = session.execute("'kept' in globals()")
        assert execution.result == "False" and execution.restarted
        assert "no longer had this session's kernel" in execution.note
        assert_usable(session)
        session.shutdown()


def test_a_kernel_culled_by_the_gateway_is_replaced_on_the_next_run(tmp_path: Path) -> None:
    culling = [
        "--MappingKernelManager.cull_idle_timeout=2",
        "--MappingKernelManager.cull_interval=1",
        "--MappingKernelManager.cull_connected=True",  # the app keeps its websocket open
    ]
    with run_kernel_gateway(tmp_path, extra=culling) as gateway, GatewaySession(gateway.config) as session:
        old = session.kernel_id
        session.execute("x = 1")
        deadline = time.monotonic() + 30
        while kernel_known(gateway, old) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not kernel_known(gateway, old), "the gateway did not cull the idle kernel"
        execution = session.execute("'x' in globals()")
        assert execution.result == "False" and execution.restarted
        assert "no longer had this session's kernel" in execution.note
        assert session.kernel_id != old


def test_a_spare_kernel_lost_before_any_use_is_replaced_without_a_note(
    kernel_gateway: RunningGateway,
) -> None:
    """A pool's warm spare may be culled before a session takes it: nothing was lost, so nothing is said."""
    with GatewaySession(kernel_gateway.config) as session:
        old = session.kernel_id
        GatewayRest(kernel_gateway.config).request("DELETE", f"/api/kernels/{old}")  # as the culler does
        time.sleep(1.1)  # past the pause after which a request checks the kernel on the gateway
        execution = session.execute("6 * 7")
        assert execution.result == "42" and execution.note == "" and not execution.restarted
        assert session.kernel_id != old


def test_a_dropped_websocket_is_reopened_and_the_run_completes(kernel_gateway: RunningGateway) -> None:
    with GatewaySession(kernel_gateway.config) as session:

        def drop() -> None:
            channels = session._channels
            assert channels is not None
            channels._socket.socket.shutdown(socket.SHUT_RDWR)  # as a network drop: no close frame

        session.execute("1")  # connected and answering, so the drop lands in the run
        threading.Timer(1.0, drop).start()
        execution = session.execute(
            "import time\nprint('a', flush=True)\ntime.sleep(2.5)\nprint('b')\n42", timeout=30
        )
        assert execution.error is None and execution.result == "42", execution.for_model()
        assert "b" in execution.stdout and not execution.restarted
        assert_usable(session)


def test_a_local_and_a_gateway_session_share_the_api() -> None:
    names = (
        "execute",
        "interrupt",
        "restart",
        "shutdown",
        "alive",
        "workdir",
        "save_file",
        "read_file",
        "list_files",
    )
    for name in names:
        assert hasattr(KernelSession, name) and hasattr(GatewaySession, name), name


def test_files_do_not_wait_for_a_running_cell(kernel_gateway: RunningGateway) -> None:
    """The page lists the files at every rerun: a long run must not hold it up (the kernel answers only between runs)."""
    with GatewaySession(kernel_gateway.config) as session:
        session.execute("open('before.txt', 'w').write('x')")
        assert [info.name for info in session.list_files()] == ["before.txt"]
        run = threading.Thread(
            target=session.execute, args=("import time\ntime.sleep(4)",), kwargs={"timeout": 30}
        )
        run.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert [info.name for info in session.list_files()] == ["before.txt"]  # the last listing
        with pytest.raises(KernelError, match="running code; upload a file once the run has ended"):
            session.save_file("during.txt", b"y")
        assert time.monotonic() - started < 3
        run.join()
        session.save_file("after.txt", b"z")
        assert [info.name for info in session.list_files()] == ["after.txt", "before.txt"]


# --- Enterprise Gateway (its local process proxy: the API, token and user checks, not Kubernetes) -----
@pytest.fixture(scope="module")
def enterprise_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_kernel_gateway(tmp_path_factory.mktemp("enterprise-gateway"), enterprise=True) as gateway:
        yield gateway


def test_an_enterprise_gateway_serves_the_same_session(enterprise_gateway: RunningGateway) -> None:
    config = replace(enterprise_gateway.config, env={"KERNEL_USERNAME": "workbench-tests"})
    with GatewaySession(config, interrupt_grace=1.0) as session:
        got = session.execute("import os\nos.environ['KERNEL_MEMORY_LIMIT'], os.environ['KERNEL_USERNAME']")
        assert got.result == repr((str(2 * 1024**3), "workbench-tests")), got.for_model()
        timed = session.execute("import time\nwhile True: time.sleep(0.01)", timeout=1.0)
        assert timed.timed_out and timed.error is not None and timed.error.name == "KeyboardInterrupt"
        session.save_file("data.csv", b"a,b\n1,2\n")
        assert session.execute("open('data.csv').read()").result == repr("a,b\n1,2\n")
        session.execute("lost = 1")
        session.restart()
        assert session.execute("lost").error is not None
        assert [info.name for info in session.list_files()] == ["data.csv"]  # the folder outlives the restart


def test_an_enterprise_gateway_refusing_the_user_says_what_to_set(enterprise_gateway: RunningGateway) -> None:
    config = replace(enterprise_gateway.config, env={"KERNEL_USERNAME": "root"})  # refused by default
    with pytest.raises(KernelGatewayError, match="HTTP 403") as raised:
        GatewaySession(config)
    assert "KERNEL_USERNAME" in str(raised.value) and "root" in str(raised.value)
