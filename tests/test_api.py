"""The Python API of the README: ``load_model().chat(query, history)``."""

from __future__ import annotations

import pytest

import workbench
from workbench import Message, Role, WorkbenchError, load_model
from workbench.errors import ModelNotFoundError
from workbench.models.generation import SamplingSettings


@pytest.mark.model
def test_load_model_and_chat_two_turns():
    bot = load_model(device="cpu")
    assert bot.info.device == "cpu"
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=24)

    reply, history = bot.chat("Which city is the capital of France?", settings=greedy)
    assert reply.strip()  # which words, this 135M model's greedy pick, changes with the CPU
    assert [(m.role, m.content) for m in history] == [
        (Role.USER, "Which city is the capital of France?"),
        (Role.ASSISTANT, reply),
    ]

    second, longer = bot.chat("And of Germany?", history, settings=greedy)
    assert len(history) == 2, "the history passed in is not modified"
    assert [m.role for m in longer] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert longer[:2] == history and longer[-1].content == second and second.strip()
    assert all(isinstance(m, Message) for m in longer)


def test_load_model_names_a_missing_path(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        load_model(str(tmp_path / "chatglm3-6b"))
    assert str(info.value).startswith(f"Model path {str(tmp_path / 'chatglm3-6b')!r} does not exist.")
    assert isinstance(info.value, WorkbenchError)


def test_load_model_reads_workbench_model(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL", str(tmp_path / "from-env"))
    with pytest.raises(ModelNotFoundError, match="from-env' does not exist"):
        load_model()


def test_load_model_rejects_an_unknown_device():
    with pytest.raises(WorkbenchError) as info:
        load_model(device="tpu")
    assert str(info.value) == "Unknown device 'tpu'; choose one of auto, cpu, cuda, mps."


def test_load_model_takes_any_spec_field_and_refuses_others():
    with pytest.raises(WorkbenchError, match="Unknown backend 'nope'"):
        load_model(backend="nope")
    with pytest.raises(TypeError, match="no field 'colour'"):
        load_model(colour="red")


def test_the_package_exports_the_api():
    assert not hasattr(workbench, "Workbench"), "one class, one name: ChatModel"
    assert {"load_model", "Message", "Role", "WorkbenchError"} <= set(workbench.__all__)
