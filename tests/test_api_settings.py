"""The Python API surfaces bad sampling settings as a SettingsError before generating anything."""

from __future__ import annotations

import pytest

from tests.scripted import ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.errors import SettingsError, WorkbenchError
from workbench.models.generation import SamplingSettings


@pytest.fixture
def model() -> ChatModel:
    return ChatModel(ScriptedBackend("Hi there."))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"temperature": -1}, "temperature must be between 0 (greedy) and 2, not -1"),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"top_p": 5}, "top_p must be above 0 and at most 1, not 5"),
        ({"max_new_tokens": 0}, "max_new_tokens must be at least 1, not 0"),
        ({"repetition_penalty": 0}, "repetition_penalty must be above 0"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"temprature": 0.5}, "Unknown sampling setting(s) temprature; use max_new_tokens"),
    ],
)
def test_chat_with_a_bad_settings_dict_raises_before_generating(
    model: ChatModel, changes: dict[str, object], expected: str
) -> None:
    backend = model.backend
    assert isinstance(backend, ScriptedBackend)
    with pytest.raises(SettingsError) as raised:
        model.chat("Hello", settings=changes)
    assert expected in str(raised.value)
    assert isinstance(raised.value, WorkbenchError)
    assert backend.requests == []


def test_bad_settings_objects_fail_where_they_are_made(model: ChatModel) -> None:
    with pytest.raises(SettingsError, match="top_p must be above 0 and at most 1, not 0"):
        SamplingSettings(top_p=0)
    with pytest.raises(SettingsError, match="temperature must be"):
        model.default_settings().with_(temperature=3)
    with pytest.raises(SettingsError, match="settings must be a SamplingSettings or a dict"):
        model.chat("Hello", settings=0.5)  # type: ignore[arg-type]


def test_a_good_settings_dict_changes_only_what_it_names(model: ChatModel) -> None:
    reply, _ = model.chat("Hello", settings={"temperature": 0, "max_new_tokens": 7})
    assert reply == "Hi there."
    backend = model.backend
    assert isinstance(backend, ScriptedBackend)
    used = backend.requests[0].settings
    defaults = model.default_settings()
    assert (used.temperature, used.max_new_tokens, used.top_p) == (0, 7, defaults.top_p)
