"""Where Code mode's kernels run: locally in the sandbox, or on a Jupyter Kernel Gateway.

``WORKBENCH_KERNEL_GATEWAY=http(s)://HOST:PORT`` sends every kernel (the Code page, ``exec``,
``ask --mode code``, the MCP ``python`` tool) to that gateway; ``WORKBENCH_KERNEL_GATEWAY_TOKEN`` is
sent as ``Authorization: token ...``; ``WORKBENCH_KERNEL_GATEWAY_KERNEL`` names the kernel spec (the
gateway's default when unset). ``KERNEL_*`` variables of the app's environment go with each start
request, as JupyterLab sends them (Enterprise Gateway reads ``KERNEL_CPUS_LIMIT``, ``KERNEL_NAMESPACE``,
``KERNEL_USERNAME``, ...). See docs/kernel.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kernel import GatewayConfig, GatewaySession, KernelGatewayError, KernelSession

#: A kernel of either kind (they offer the same methods).
Kernel = KernelSession | GatewaySession

GATEWAY_URL_ENV = "WORKBENCH_KERNEL_GATEWAY"
GATEWAY_TOKEN_ENV = "WORKBENCH_KERNEL_GATEWAY_TOKEN"
GATEWAY_KERNEL_ENV = "WORKBENCH_KERNEL_GATEWAY_KERNEL"


def gateway_config(environ: Mapping[str, str] | None = None) -> GatewayConfig | None:
    """The Kernel Gateway named by the environment, or None for local kernels.

    Raises:
        KernelGatewayError: If ``WORKBENCH_KERNEL_GATEWAY`` is not an http(s) URL.
    """
    env = os.environ if environ is None else environ
    url = env.get(GATEWAY_URL_ENV, "").strip()
    if not url:
        return None
    passed = {name: value for name, value in env.items() if name.startswith("KERNEL_")}
    try:
        return GatewayConfig(
            url=url,
            token=env.get(GATEWAY_TOKEN_ENV, "").strip(),
            kernel_name=env.get(GATEWAY_KERNEL_ENV, "").strip(),
            env=passed,
        )
    except KernelGatewayError:
        raise KernelGatewayError(
            f"{GATEWAY_URL_ENV}={url!r} is not an http(s) URL; set it to one such as http://127.0.0.1:8888, "
            "or unset it to run the kernels on this machine."
        ) from None


def open_kernel() -> Kernel:
    """A new kernel where the environment says: on the gateway, or local and sandboxed where possible.

    Raises:
        KernelError: If it cannot start (the message says why: sandbox, gateway unreachable, token).
    """
    config = gateway_config()
    return KernelSession() if config is None else GatewaySession(config)


def isolation_warning(kernel: object) -> str:
    """What to tell a CLI user about where the code runs: a warning, a note, or "" when sandboxed here."""
    gateway = getattr(kernel, "gateway_url", "")
    if gateway:
        return (
            f"Note: the code runs on the Kernel Gateway at {gateway}: the local sandbox's limits do not apply; "
            "it is isolated as the gateway isolates it (Enterprise Gateway: a pod per kernel)."
        )
    if getattr(kernel, "sandboxed", False):
        return ""
    reason = getattr(kernel, "sandbox_reason", "") or "bubblewrap cannot run here"
    return (
        f"Warning: the code runs NOT sandboxed ({reason}): it can read and change your files and use "
        "the network. Install bubblewrap and enable user namespaces to sandbox it."
    )
