"""Shared fixtures: the real embedded model, loaded once per test session."""

from __future__ import annotations

import pytest

from workbench.chat_model import ChatModel
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model


@pytest.fixture(scope="session")
def chat_model() -> ChatModel:
    """The real embedded SmolLM2-135M-Instruct on the CPU (converted once, then from the cache)."""
    return shared_model(ModelSpec(device="cpu")).get()
