"""The errors the kernel package raises on purpose, one tree rooted in :class:`KernelError`.

``kernel`` is a library of its own (like ``jupyter_client``): it imports nothing from Workbench, so
its errors derive from ``Exception`` only. Every message says what went wrong and what to do next.
Workbench re-exports these classes from :mod:`workbench.errors` and catches them together with its own
errors through ``workbench.errors.USER_ERRORS``.

This module imports nothing, so importing it is free.
"""

from __future__ import annotations

__all__ = [
    "KernelDiedError",
    "KernelError",
    "KernelGatewayError",
    "KernelLimitError",
    "KernelStartError",
    "WorkdirFullError",
    "WorkdirPathError",
]


class KernelError(Exception):
    """Base of the errors of code execution: the session is closed, a limit is not valid, a file is too big."""


class KernelStartError(KernelError):
    """A kernel could not be started (sandbox missing, ipykernel broken, work folder unusable)."""


class KernelDiedError(KernelError):
    """The kernel died and could not be restarted; its state is lost."""


class KernelGatewayError(KernelError):
    """The Kernel Gateway cannot be reached, refused the token, or lost the kernel."""


class KernelLimitError(KernelError):
    """Too many kernels are running at once."""


class WorkdirPathError(KernelError):
    """A path points outside the session's work folder, or at something that is not a regular file."""


class WorkdirFullError(KernelError):
    """The work folder has no room left for a file."""
