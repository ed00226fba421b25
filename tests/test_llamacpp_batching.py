"""Continuous batching on the llama.cpp engine (issue 18): slots, one decode for all, Stop, the queue, reuse.

Answers are made exact on purpose with a JSON schema (an ``enum`` per prompt): the 135M model's free
text changes with the CPU, and under batching with what else shares the step.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.engines import embedded_spec
from workbench.chat_model import ChatModel
from workbench.errors import ModelBusyError
from workbench.messages import Message, Role
from workbench.models.backends import llama_cpp_installed
from workbench.models.generation import GenerationStream, SamplingSettings
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
]

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=48)
#: A forced answer long enough to keep a slot busy for a while (about 150 tokens).
LONG = " ".join(f"word{i}" for i in range(60))


def batched(parallel: int, queue: int = 0) -> ChatModel:
    spec: ModelSpec = embedded_spec("llama.cpp").replace(parallel=parallel, queue=queue)
    return shared_model(spec).get()


def ask(model: ChatModel, question: str, answer: str, **settings: object) -> GenerationStream:
    return model.stream(
        [Message(Role.USER, question)], GREEDY.with_(**settings), json_schema={"enum": [answer]}
    )


def test_four_concurrent_constrained_requests_each_get_their_own_answer():
    model = batched(4)
    scheduler = model.backend.scheduler  # type: ignore[attr-defined]
    peak = scheduler.peak
    scheduler.peak = 0
    answers = {
        "Name a fruit.": "apple-1",
        "Name a city.": "Paris-2",
        "Name a colour.": "blue-3",
        "2+2?": "4-four",
    }
    streams = {q: ask(model, q, a, temperature=0.7, seed=7) for q, a in answers.items()}
    texts = {q: s.result(timeout=300) for q, s in streams.items()}
    assert texts == {q: f'"{a}"' for q, a in answers.items()}
    assert all(s.stats.finish_reason == "eos" and s.stats.first_token_s is not None for s in streams.values())
    assert scheduler.peak == 4  # the four ran in one step at least once
    scheduler.peak = max(peak, scheduler.peak)


def test_stop_on_one_slot_leaves_the_others_running():
    model = batched(3)
    streams = [ask(model, f"Say a list, number {i}.", LONG, max_new_tokens=400) for i in range(3)]
    stopped, others = streams[0], streams[1:]
    deadline = time.monotonic() + 300
    while not (stopped.text and all(s.text for s in others)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(not s.done.is_set() for s in streams), "all three should still be generating"
    assert stopped.halt(timeout=60)
    assert stopped.stats.finish_reason == "cancelled"
    lengths = [len(s.text) for s in others]
    for stream in others:
        assert stream.result(timeout=300) == f'"{LONG}"'
        assert stream.stats.finish_reason == "eos"
    assert all(len(s.text) > n for s, n in zip(others, lengths, strict=True))  # they went on after the Stop


def test_a_full_queue_is_refused_at_once_and_a_stopped_waiting_request_leaves_it():
    model = batched(2, queue=1)
    running = [ask(model, f"Say a list, number {i}.", LONG, max_new_tokens=400) for i in range(2)]
    deadline = time.monotonic() + 300
    while not all(s.text for s in running) and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting = ask(model, "Name a fruit.", "apple")
    assert waiting.waiting_notice() == "Waiting for a free slot (0 ahead)"
    with pytest.raises(ModelBusyError, match="try again"):
        ask(model, "Name a city.", "Paris")
    assert waiting.halt(timeout=60) and waiting.stats.finish_reason == "cancelled"
    assert waiting.text == "" and waiting.stats.new_tokens == 0
    queued_again = ask(model, "Name a city.", "Paris")  # the stopped one left the queue
    for stream in running:
        stream.halt(timeout=60)
    assert queued_again.result(timeout=300) == '"Paris"'
    assert queued_again.stats.waited_s > 0


def test_a_failing_slot_ends_only_its_request(monkeypatch):
    model = batched(2)
    backend = model.backend
    good = ask(model, "Say a list.", LONG, max_new_tokens=400)
    while not good.text:
        time.sleep(0.01)
    import workbench.models.llamacpp_batched as batched_module

    class BrokenGrammar:
        grammar = None  # llama.cpp would refuse it; here the sampler's set-up fails in its slot

    monkeypatch.setattr(batched_module, "json_schema_grammar", lambda schema, vocab: BrokenGrammar())
    bad = model.stream([Message(Role.USER, "Hi")], GREEDY, json_schema={"enum": ["x"]})
    monkeypatch.undo()
    with pytest.raises(Exception, match="failed"):
        bad.result(timeout=120)
    assert bad.stats.finish_reason == "error"
    assert good.result(timeout=300) == f'"{LONG}"'
    assert backend.scheduler.waiting == 0  # type: ignore[attr-defined]


def test_conversations_beyond_the_slots_get_their_cache_back():
    """Five conversations on two slots: each second turn evaluates only its new message."""
    model = batched(2)
    scheduler = model.backend.scheduler  # type: ignore[attr-defined]
    scheduler.forget()
    systems = [f"You are teacher number {i}. " + "Answer in one word. " * 10 for i in range(5)]
    histories = [[Message(Role.SYSTEM, s), Message(Role.USER, "Name a fruit.")] for s in systems]
    for history in histories:
        text = model.stream(history, GREEDY, json_schema={"enum": ["apple"]}).result(timeout=120)
        history += [model.dialect.parse(text), Message(Role.USER, "And a vegetable?")]
    restores = scheduler.restores
    for history in histories:
        evaluated = scheduler.prompt_tokens_evaluated
        stream = model.stream(history, GREEDY, json_schema={"enum": ["carrot"]})
        assert stream.result(timeout=120) == '"carrot"'
        new = scheduler.prompt_tokens_evaluated - evaluated
        assert new < stream.stats.prompt_tokens / 3, (new, stream.stats.prompt_tokens)
    assert scheduler.restores == restores + 5


def test_parallel_one_keeps_the_serial_engine():
    model = batched(1)
    assert not hasattr(model.backend, "scheduler")
    assert ask(model, "Name a fruit.", "apple").result(timeout=120) == '"apple"'


def test_python_threads_share_the_slots():
    model = batched(4)
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = ask(model, f"Pick number {i}.", f"n{i}").result(timeout=300)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results == {i: f'"n{i}"' for i in range(6)}
