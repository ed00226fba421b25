"""Fixtures for the kernel tests: real ipykernels in the real bubblewrap sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import KernelSession


@pytest.fixture(scope="module")
def kernel_session() -> Iterator[KernelSession]:
    """One sandboxed session shared by a test module (tests must leave it usable)."""
    with KernelSession(sandbox=True, interrupt_grace=1.0) as session:
        yield session


@pytest.fixture
def fresh_session() -> Iterator[KernelSession]:
    """A sandboxed session of its own, for tests that break or inspect a kernel."""
    with KernelSession(sandbox=True, interrupt_grace=1.0) as session:
        yield session
