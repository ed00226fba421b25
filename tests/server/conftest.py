"""Fixtures: the API on the embedded model, served from a thread of the test process (one model in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.server.helpers import server_thread
from workbench.chat_model import ChatModel
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.shared import SharedModel, shared_model

API_KEY = "test-key-1234"


@pytest.fixture(scope="session")
def model_slot(chat_model: ChatModel) -> SharedModel:
    """The loaded slot of the embedded model (the same one the ``chat_model`` fixture holds)."""
    slot = shared_model(ModelSpec(device="cpu"))
    assert slot.loaded
    return slot


@pytest.fixture(scope="session")
def api_url(model_slot: SharedModel) -> Iterator[str]:
    """The base URL (``.../v1``) of the API without a key."""
    with server_thread(create_app(model_slot)) as url:
        yield url


@pytest.fixture(scope="session")
def keyed_api_url(model_slot: SharedModel) -> Iterator[str]:
    """The base URL of the API started with ``--api-key`` :data:`API_KEY`."""
    with server_thread(
        create_app(model_slot, api_key=API_KEY, cors_origins=["http://localhost:3000"])
    ) as url:
        yield url


@pytest.fixture(scope="session")
def client(api_url: str) -> openai.OpenAI:
    """The official client on the keyless API (no retries: a 5xx must show)."""
    return openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0, timeout=600)
