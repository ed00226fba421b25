"""A real Jupyter Kernel Gateway (or Enterprise Gateway) for the tests, on loopback with a token.

``jupyter-kernel-gateway`` (``jupyter-enterprise-gateway``) comes from PyPI into a venv of its own
(:func:`tests.cached_venvs.server_venv`: it pulls in jupyter_server, whose pins need not match ours).
Enterprise Gateway runs here with its default local process proxy: its API, token and user checks, not
its Kubernetes pods. Its kernels are this venv's ipykernel,
through a kernel spec of the tests' own (``workbench-test``), so they have numpy, pandas and matplotlib
as local kernels do.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernel import GatewayConfig
from tests.cached_venvs import server_venv

#: What the fixture installs (3.x serves jupyter_server 2's kernels API and channels websocket).
REQUIREMENT = "jupyter-kernel-gateway>=3.0"
ENTERPRISE_REQUIREMENT = "jupyter-enterprise-gateway>=3.0"
KERNEL_NAME = "workbench-test"


@dataclass
class RunningGateway:
    """A gateway the tests started.

    Attributes:
        config: How to reach it (URL, token, kernel name).
        process: Its process (tests may kill it).
        port: Its loopback port.
        log: Its log file.
    """

    config: GatewayConfig
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def write_kernel_spec(root: Path) -> Path:
    """A ``JUPYTER_PATH`` folder holding the ``workbench-test`` kernel spec (this venv's ipykernel)."""
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Workbench tests", "language": "python"})
    )
    return root


@contextmanager
def run_kernel_gateway(
    root: Path, port: int = 0, token: str = "", extra: list[str] | None = None, enterprise: bool = False
) -> Iterator[RunningGateway]:
    """Start ``jupyter kernelgateway`` on 127.0.0.1 with a token; stop it at the end.

    Args:
        root: A folder of its own (kernel spec, runtime files, log).
        port: The port (0 picks a free one; a restarted gateway reuses its port).
        token: The token (a random one when "").
        extra: More command-line settings (``--MappingKernelManager.cull_idle_timeout=2``).
        enterprise: Start Jupyter Enterprise Gateway instead.
    """
    from tests.e2e.streamlit_server import free_port
    from tests.server.helpers import server_process

    if enterprise:
        script, app = server_venv(ENTERPRISE_REQUIREMENT, "jupyter-enterprisegateway"), "EnterpriseGatewayApp"
    else:
        script, app = server_venv(REQUIREMENT, "jupyter-kernelgateway"), "KernelGatewayApp"
    port = port or free_port()
    token = token or secrets.token_hex(16)
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(write_kernel_spec(root / "share")),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
    }
    env.pop("PYTHONPATH", None)  # the gateway's venv is its own; the kernel spec names our python
    command = [
        str(script),
        f"--{app}.ip=127.0.0.1",
        f"--{app}.port={port}",
        f"--{app}.port_retries=0",
        f"--{app}.auth_token={token}",
        *(extra or []),
    ]
    log = root / f"kernel-gateway-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with server_process(command, f"{url}/api?token={token}", log, cwd=root, env=env) as process:
        yield RunningGateway(GatewayConfig(url, token=token, kernel_name=KERNEL_NAME), process, port, log)
