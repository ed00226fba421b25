"""The sandboxed Jupyter kernel: launch, execute, interrupt, restart, limits, files.

Modules, by role (as in jupyter_client):

- :mod:`kernel.sandbox`: the limits, the bubblewrap command line and the kernel manager;
- :mod:`kernel.seccomp`: the seccomp filter bubblewrap loads (what is denied, and why);
- :mod:`kernel.launcher`: each session's launcher thread (start time-outs, none shared);
- :mod:`kernel.folders`: the session's host folders and their size cap;
- :mod:`kernel.session`: :class:`KernelSession`, one kernel and the code it runs;
- :mod:`kernel.outputs`: :class:`Execution`, what a run produced, and its text for a model;
- :mod:`kernel.pool`: :class:`KernelPool`, one kernel per browser session;
- :mod:`kernel.gateway`: :class:`GatewaySession`, the same for a kernel on a Jupyter Kernel Gateway
  (:mod:`kernel.gateway_client` speaks to the gateway, :mod:`kernel.remote_files` moves its files);
- :mod:`kernel.files`: upload, list and download files in the work folder;
- :mod:`kernel.errors`: :class:`KernelError` and its children, the errors raised on purpose.

The package imports nothing from Workbench. Importing it (or :mod:`kernel.errors`) is cheap: the
modules above load on first use of a name.

Example:
    >>> from kernel import KernelSession
    >>> with KernelSession() as session:  # doctest: +SKIP
    ...     print(session.execute("1 + 1").result)
    2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kernel.errors import (
    KernelDiedError,
    KernelError,
    KernelGatewayError,
    KernelLimitError,
    KernelStartError,
    WorkdirFullError,
    WorkdirPathError,
)

if TYPE_CHECKING:
    from kernel.files import FileInfo, list_files, read_file, resolve_in_workdir, save_upload
    from kernel.gateway import GatewaySession
    from kernel.gateway_client import GatewayConfig
    from kernel.outputs import STATE_LOST, Execution, ExecutionError, Output
    from kernel.pool import KernelLease, KernelPool
    from kernel.sandbox import SandboxLimits, sandbox_available
    from kernel.session import KernelSession

# Names loaded on first use (PEP 562), so ``import kernel.errors`` does not load jupyter_client and zmq.
_LAZY = {
    "FileInfo": "kernel.files",
    "GatewayConfig": "kernel.gateway_client",
    "GatewaySession": "kernel.gateway",
    "list_files": "kernel.files",
    "read_file": "kernel.files",
    "resolve_in_workdir": "kernel.files",
    "save_upload": "kernel.files",
    "STATE_LOST": "kernel.outputs",
    "Execution": "kernel.outputs",
    "ExecutionError": "kernel.outputs",
    "Output": "kernel.outputs",
    "KernelLease": "kernel.pool",
    "KernelPool": "kernel.pool",
    "SandboxLimits": "kernel.sandbox",
    "sandbox_available": "kernel.sandbox",
    "KernelSession": "kernel.session",
}

__all__ = [
    "STATE_LOST",
    "Execution",
    "ExecutionError",
    "FileInfo",
    "GatewayConfig",
    "GatewaySession",
    "KernelDiedError",
    "KernelError",
    "KernelGatewayError",
    "KernelLease",
    "KernelLimitError",
    "KernelPool",
    "KernelSession",
    "KernelStartError",
    "Output",
    "SandboxLimits",
    "WorkdirFullError",
    "WorkdirPathError",
    "list_files",
    "read_file",
    "resolve_in_workdir",
    "sandbox_available",
    "save_upload",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
