"""The sandboxed Jupyter kernel: launch, execute, interrupt, restart, limits, files.

Modules, by role (as in jupyter_client):

- :mod:`kernel.sandbox`: the limits, the bubblewrap command line and the kernel manager;
- :mod:`kernel.folders`: the session's host folders and their size cap;
- :mod:`kernel.session`: :class:`KernelSession`, one kernel and the code it runs;
- :mod:`kernel.outputs`: :class:`Execution`, what a run produced, and its text for a model;
- :mod:`kernel.pool`: :class:`KernelPool`, one kernel per browser session;
- :mod:`kernel.files`: upload, list and download files in the work folder.

Example:
    >>> from kernel import KernelSession
    >>> with KernelSession() as session:  # doctest: +SKIP
    ...     print(session.execute("1 + 1").result)
    2
"""

from kernel.files import FileInfo, WorkdirFullError, list_files, read_file, resolve_in_workdir, save_upload
from kernel.outputs import Execution, ExecutionError, Output
from kernel.pool import KernelPool
from kernel.sandbox import SandboxLimits, sandbox_available
from kernel.session import KernelSession

__all__ = [
    "Execution",
    "ExecutionError",
    "FileInfo",
    "KernelPool",
    "KernelSession",
    "Output",
    "SandboxLimits",
    "WorkdirFullError",
    "list_files",
    "read_file",
    "resolve_in_workdir",
    "sandbox_available",
    "save_upload",
]
