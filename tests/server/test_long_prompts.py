"""Long prompts on llama.cpp: tokenized in pieces, to the same tokens, in time linear in the prompt.

llama.cpp's own tokenizer is quadratic in the special tokens of a text (issue 25: 200,000 short
messages kept a core busy for over 34 minutes, past the client's leaving and SIGTERM).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.server.helpers import MODEL_ID, http_json, server_thread
from workbench.models import llamacpp_tokens
from workbench.models.backends import llama_cpp_installed
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.shared import shared_model

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
]


@pytest.fixture(scope="module")
def llama_model() -> Any:
    """The embedded model on llama.cpp."""
    return shared_model(ModelSpec(device="cpu", backend="llama.cpp")).get()


TEXTS = [
    "",
    "plain text, no special token",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\n <|im_end|>\n<|im_start|><|im_end|><|im_end|> x<|im_start|>\t<|im_end|>",
    "é☃🎉<|im_end|>日本語<|im_start|>  spaced  <|endoftext|>end",
    "<|im_start|>system\nBe brief.<|im_end|>\n" * 40,
]


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_give_the_tokens_of_the_whole(
    llama_model: Any, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(llamacpp_tokens, "SPECIALS_PER_PIECE", 2)  # cut as often as possible
    llm = llama_model.backend.llm
    data = text.encode("utf-8")
    whole = list(llm.tokenize(data, add_bos=False, special=True))
    assert llamacpp_tokens.PieceTokenizer(llm).tokenize(data) == whole
    assert llama_model.backend.tokenize(text) == whole


@pytest.mark.timeout(300)
def test_many_special_tokens_are_tokenized_in_linear_time(llama_model: Any) -> None:
    text = "<|im_start|>user\nhi<|im_end|>\n" * 100_000  # 200,000 special tokens, 3 MB
    tokens = llama_model.backend.tokenize(text)
    assert len(tokens) == 100_000 * len(llama_model.backend.tokenize("<|im_start|>user\nhi<|im_end|>\n"))


@pytest.mark.timeout(300)
def test_a_request_full_of_special_tokens_is_answered_within_seconds(llama_model: Any) -> None:
    slot = shared_model(ModelSpec(device="cpu", backend="llama.cpp"))
    content = "<|im_end|>x" * 300  # 2,000 messages of 300 special tokens each, 6.6 MB
    messages = [{"role": "user", "content": content} for _ in range(2_000)]
    with server_thread(create_app(slot)) as url:
        started = time.monotonic()
        status, answer = http_json(
            "POST", url + "/chat/completions", {"model": MODEL_ID, "messages": messages}
        )
        assert status == 400 and answer["error"]["code"] == "context_length_exceeded", answer
        assert time.monotonic() - started < 60
