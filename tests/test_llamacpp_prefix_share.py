"""Conversations that begin alike read their shared prefix once (issue 18, first token at 4 clients).

A new request copies the settled cells another slot (busy or free) holds of its prompt, through
llama.cpp's per-sequence state (``SlotCaches.copy``). Free text is compared only between two runs on this
machine, with and without the copy, in steps made alike on purpose (the requests are admitted in one
step); never with a fixed answer, since the 135M model's text changes with the CPU and with what else
shares a step.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.engines import embedded_spec
from workbench.chat_model import ChatModel
from workbench.messages import Message, Role
from workbench.models.backends import llama_cpp_installed
from workbench.models.generation import GenerationStream, SamplingSettings
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
]

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=24)
#: A system prompt long enough to be worth sharing (well over MIN_GAIN_TOKENS).
SYSTEM = "You are a careful librarian. " + " ".join(
    f"Rule {i}: answer briefly and kindly." for i in range(20)
)
QUESTIONS = ["Name a fruit.", "Name a river.", "Name a poet.", "Name a bird."]


def batched(parallel: int) -> tuple[ChatModel, Any]:
    """The shared model with ``parallel`` slots, its caches emptied."""
    spec: ModelSpec = embedded_spec("llama.cpp").replace(parallel=parallel)
    model = shared_model(spec).get()
    scheduler = model.backend.scheduler  # type: ignore[attr-defined]
    scheduler.forget()
    return model, scheduler


def chat(model: ChatModel, question: str, **settings: object) -> GenerationStream:
    return model.stream(
        [Message(Role.SYSTEM, SYSTEM), Message(Role.USER, question)], GREEDY.with_(**settings)
    )


def settled(scheduler: Any) -> None:
    """Wait until the idle scheduler has settled every free slot's cells."""
    deadline = time.monotonic() + 120
    while scheduler._unsettled() is not None and time.monotonic() < deadline:
        time.sleep(0.01)


def together(model: ChatModel, scheduler: Any, share: bool) -> tuple[list[str], int, int]:
    """The first question alone, then all four admitted in one step: their texts, copies, prompt tokens.

    The first question's cells stay in its slot; with ``share`` the three others copy them. Holding the
    step lock while the four are queued makes every step of the two runs carry the same slots.
    """
    scheduler.forget()
    scheduler.share_prefixes = share
    try:
        chat(model, QUESTIONS[0]).result(timeout=300)
        settled(scheduler)
        copies, evaluated = scheduler.copies, scheduler.prompt_tokens_evaluated
        with scheduler.step_lock:
            streams = [chat(model, q) for q in QUESTIONS]
        texts = [s.result(timeout=300) for s in streams]
        assert all(s.stats.first_token_s is not None for s in streams)
        return texts, scheduler.copies - copies, scheduler.prompt_tokens_evaluated - evaluated
    finally:
        scheduler.share_prefixes = True


def test_requests_admitted_together_copy_the_prefix_one_slot_holds():
    model, scheduler = batched(4)
    texts, copies, evaluated = together(model, scheduler, share=True)
    prompt = len(model.backend.tokenize(SYSTEM))  # type: ignore[attr-defined]
    assert copies == 3
    assert evaluated < 4 * 30, (
        f"{evaluated} prompt tokens read: the shared system prompt ({prompt}) was read again"
    )
    assert all(texts)


def test_answers_after_a_copy_are_those_of_prompts_read_afresh():
    model, scheduler = batched(4)
    shared_texts, copies, shared_evaluated = together(model, scheduler, share=True)
    fresh_texts, no_copies, fresh_evaluated = together(model, scheduler, share=False)
    assert (copies, no_copies) == (3, 0)
    assert fresh_evaluated > shared_evaluated + 3 * 60  # this time the three read their whole prompts
    assert shared_texts == fresh_texts


def test_a_second_conversation_copies_from_a_running_one_and_leaves_it_undisturbed():
    model, scheduler = batched(2)
    first = chat(model, "Tell me about the history of libraries.", max_new_tokens=80)
    deadline = time.monotonic() + 300
    while not first.text and time.monotonic() < deadline:
        time.sleep(0.01)
    copies, evaluated = scheduler.copies, scheduler.prompt_tokens_evaluated
    second = chat(model, "Name a fruit.")
    assert second.result(timeout=300)
    assert scheduler.copies == copies + 1
    assert scheduler.prompt_tokens_evaluated - evaluated < 30
    assert first.result(timeout=300) and first.stats.finish_reason in ("length", "eos")
    assert first.stats.new_tokens > 0


def test_new_conversations_arriving_together_read_their_shared_prefix_once():
    """Nothing holds the system prompt yet: the first reads it, the other three wait a step and copy it."""
    model, scheduler = batched(4)
    copies, evaluated = scheduler.copies, scheduler.prompt_tokens_evaluated
    with scheduler.step_lock:
        streams = [chat(model, q) for q in QUESTIONS]
    texts = [s.result(timeout=300) for s in streams]
    prompt = streams[0].stats.prompt_tokens
    assert scheduler.copies - copies == 3
    assert scheduler.prompt_tokens_evaluated - evaluated < prompt + 3 * 30
    assert all(texts) and all(s.stats.first_token_s is not None for s in streams)


def test_a_conversation_waiting_for_a_prefix_goes_on_when_its_reader_is_stopped(monkeypatch):
    model, scheduler = batched(2)
    long_system = SYSTEM * 12  # read in several steps (n_batch tokens each)
    paused, go = threading.Event(), threading.Event()
    step = scheduler._step

    def first_step_then_pause() -> None:
        step()
        if not paused.is_set():
            paused.set()
            go.wait(60)

    monkeypatch.setattr(scheduler, "_step", first_step_then_pause)
    first = model.stream([Message(Role.SYSTEM, long_system), Message(Role.USER, QUESTIONS[0])], GREEDY)
    assert paused.wait(120)
    reading = next(s for s in scheduler.slots if s.job is not None)
    assert 0 < reading.job.read < len(reading.job.tokens)  # the first is still reading its prompt
    second = model.stream([Message(Role.SYSTEM, long_system), Message(Role.USER, QUESTIONS[1])], GREEDY)
    assert scheduler._wait_for_prefix(scheduler._queue[0])
    first.cancel()
    go.set()
    assert second.result(timeout=300)
    assert first.wait(60) and first.stats.finish_reason == "cancelled"
    assert second.stats.finish_reason in ("length", "eos")


def test_a_source_larger_than_the_budget_is_not_copied(monkeypatch):
    model, scheduler = batched(4)
    monkeypatch.setattr(scheduler.caches, "budget_bytes", 64 << 10)  # a few tokens' cells
    texts, copies, evaluated = together(model, scheduler, share=True)
    assert copies == 0 and all(texts)
    assert evaluated > 3 * 60  # the three read their whole prompts


class RefusingStates:
    """The llama_cpp module, except that llama.cpp refuses every state put back into a sequence."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    @staticmethod
    def llama_state_seq_set_data(*_args: Any) -> int:
        return 0


def test_a_copy_llama_cpp_refuses_leaves_the_job_reading_its_whole_prompt(monkeypatch):
    model, scheduler = batched(4)
    fresh_texts, _, fresh_evaluated = together(model, scheduler, share=False)
    monkeypatch.setattr(scheduler.caches, "_lib", RefusingStates(scheduler.caches._lib))
    texts, copies, evaluated = together(model, scheduler, share=True)
    assert copies == 0 and evaluated == fresh_evaluated
    assert texts == fresh_texts
