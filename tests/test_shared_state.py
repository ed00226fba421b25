"""Process-wide state that no browser message can clear: model slots (at most ``keep``), other resources."""

from __future__ import annotations

import threading

import pytest

from workbench.models.spec import ModelSpec
from workbench.shared import process_resource, shared_model


def test_a_slot_is_shared_and_the_least_recently_asked_for_go_beyond_keep() -> None:
    specs = [ModelSpec(source=f"/models/kept-{n}.gguf") for n in range(4)]
    first = shared_model(specs[0], keep=3)
    assert shared_model(specs[0], keep=3) is first  # nothing loads: slots load on get()
    second, third = (shared_model(spec, keep=3) for spec in specs[1:3])
    shared_model(specs[0], keep=3)  # asked for again: the most recent now
    shared_model(specs[3], keep=3)  # one too many: specs[1], the oldest, goes
    assert shared_model(specs[0], keep=3) is first
    assert shared_model(specs[2], keep=3) is third
    assert shared_model(specs[1], keep=3) is not second  # a new, empty slot


def test_a_resource_is_made_once_even_when_asked_for_at_once() -> None:
    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(process_resource("test", "once", factory)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(item is made[0] for item in got)


def test_a_failed_factory_keeps_nothing() -> None:
    def broken() -> object:
        raise OSError("no disk")

    with pytest.raises(OSError):
        process_resource("test", "broken", broken)
    assert process_resource("test", "broken", lambda: "made") == "made"
