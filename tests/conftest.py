"""Shared fixtures: the real embedded model, loaded once per test session on each engine installed here."""

from __future__ import annotations

import pytest

from tests.engines import ENGINES
from workbench.chat_model import ChatModel
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model


@pytest.fixture(scope="session", params=ENGINES)
def chat_model(request: pytest.FixtureRequest) -> ChatModel:
    """The real embedded SmolLM2-135M-Instruct on the CPU, once per engine (tests using it run on each)."""
    return shared_model(ModelSpec(device="cpu", backend=request.param)).get()


@pytest.fixture(scope="session")
def transformers_model() -> ChatModel:
    """The embedded model on transformers, for tests of its tokenizer or its conversion cache."""
    return shared_model(ModelSpec(device="cpu", backend="transformers")).get()
