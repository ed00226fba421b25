"""Shared fixtures: the real embedded model once per engine installed here; a data folder of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import ENGINES, embedded_spec
from tests.hub_server import FakeHub, HubServer, build_test_hub
from tests.vision_fixture import tiny_vlm, vlm_model  # noqa: F401 (fixtures: the tiny vision model)
from workbench.chat_model import ChatModel
from workbench.shared import shared_model


@pytest.fixture(scope="session", params=ENGINES)
def chat_model(request: pytest.FixtureRequest) -> ChatModel:
    """The real embedded SmolLM2-135M-Instruct on the CPU, once per engine (tests using it run on each).

    llama.cpp runs with ``WORKBENCH_THREADS`` threads when it is set (the suite runs with 1 and with 2).
    """
    return shared_model(embedded_spec(request.param)).get()


@pytest.fixture(scope="session")
def transformers_model() -> ChatModel:
    """The embedded model on transformers, for tests of its tokenizer or its conversion cache."""
    return shared_model(embedded_spec("transformers")).get()


@pytest.fixture(scope="session", autouse=True)
def own_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Saved conversations of the tests (pages, CLI, browser servers) go to a folder of the session's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_DATA_DIR", str(tmp_path_factory.mktemp("workbench-data")))
        patch.delenv("WORKBENCH_DB_URL", raising=False)
        yield


@pytest.fixture(scope="session")
def fake_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """A Hugging Face Hub on loopback (tests/hub_server.py) serving the embedded model as test repos."""
    with HubServer(build_test_hub(tmp_path_factory.mktemp("hub-files"))) as hub:
        yield hub


@pytest.fixture
def hub(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The loopback Hub as ``HF_ENDPOINT``, an empty ``HF_HOME`` and cache of this test's, no faults."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "workbench"))
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    fake_hub.cut.clear()
    fake_hub.corrupt.clear()
    fake_hub.rate = None
    fake_hub.requests.clear()
    return fake_hub


@pytest.fixture(scope="session")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real Jupyter Kernel Gateway on loopback with a token, for the whole run (``RunningGateway``)."""
    from tests.kernel.kernel_gateway import run_kernel_gateway

    with run_kernel_gateway(tmp_path_factory.mktemp("kernel-gateway")) as gateway:
        yield gateway
