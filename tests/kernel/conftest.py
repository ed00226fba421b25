"""Fixtures for the kernel tests: real ipykernels in the real bubblewrap sandbox, or on a real Kernel Gateway.

``either_session`` and ``either_fresh_session`` run a test twice: on a local sandboxed kernel and on a
kernel of the Jupyter Kernel Gateway that ``kernel_gateway`` (tests/conftest.py) starts on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import GatewaySession, KernelSession
from kernel.pool import AnyKernel

KINDS = ["local", "gateway"]


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


def open_either(request: pytest.FixtureRequest) -> AnyKernel:
    """A local sandboxed session, or one on the tests' Kernel Gateway, as ``request.param`` says."""
    if request.param == "local":
        return KernelSession(sandbox=True, interrupt_grace=1.0)
    gateway = request.getfixturevalue("kernel_gateway")
    return GatewaySession(gateway.config, interrupt_grace=1.0)


@pytest.fixture(scope="module", params=KINDS)
def either_session(request: pytest.FixtureRequest) -> Iterator[AnyKernel]:
    """One session per kind shared by a test module (tests must leave it usable)."""
    with open_either(request) as session:
        yield session


@pytest.fixture(params=KINDS)
def either_fresh_session(request: pytest.FixtureRequest) -> Iterator[AnyKernel]:
    """A session of its own, of each kind, for tests that break or restart a kernel."""
    with open_either(request) as session:
        yield session
