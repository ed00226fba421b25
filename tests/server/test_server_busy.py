"""``serve`` on llama.cpp's slots: a full queue gets a 503 with ``Retry-After`` at once (issue 18)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.engines import embedded_spec
from tests.server.helpers import MODEL_ID, server_thread
from workbench.messages import Message, Role
from workbench.models.backends import llama_cpp_installed
from workbench.models.generation import SamplingSettings
from workbench.server.app import create_app
from workbench.shared import shared_model

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
]

LONG = " ".join(f"word{i}" for i in range(60))


def test_a_full_queue_gets_a_503_with_retry_after() -> None:
    slot = shared_model(embedded_spec("llama.cpp").replace(parallel=2, queue=1))
    model = slot.get()
    settings = SamplingSettings(temperature=0.0, max_new_tokens=400)
    # Two answers hold the two slots and a third waits: the queue is full.
    held = [
        model.stream([Message(Role.USER, f"List {i}.")], settings, json_schema={"enum": [LONG]})
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 300
        while not (held[0].text and held[1].text) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held[2].waiting_notice() == "Waiting for a free slot (0 ahead)"
        with server_thread(create_app(slot)) as url:
            body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
            request = urllib.request.Request(
                url + "/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            started = time.monotonic()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert time.monotonic() - started < 30  # refused at once, not after waiting
            assert refused.value.code == 503
            assert refused.value.headers["Retry-After"] == "5"
            error = json.loads(refused.value.read())["error"]
            assert error["code"] == "server_busy" and "try again" in error["message"]
    finally:
        for stream in held:
            stream.halt(timeout=60)
