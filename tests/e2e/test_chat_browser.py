"""The Chat page in real Chromium against ``streamlit run main.py``: streaming, Stop, two sessions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.page_actions import STOP_BUTTON, send, set_sampling, wait_idle
from tests.e2e.streamlit_server import CHAT_INPUT, open_app

pytestmark = pytest.mark.browser

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"
STORY = "Write a very long story about a dragon who learns to bake bread, with many chapters."


def replies(page: Any) -> list[str]:
    """The text of every assistant message (without its stats line), without waiting."""
    return [
        message.locator("[data-testid='stMarkdownContainer']").first.inner_text()
        if message.locator("[data-testid='stMarkdownContainer']").count()
        else ""
        for message in page.locator(ASSISTANT).all()
    ]


def captions(page: Any) -> list[str]:
    return page.locator(f"{ASSISTANT} [data-testid='stCaptionContainer']").all_inner_texts()


def watch_reply(page: Any, index: int, until: Any, timeout_s: float = 240) -> list[tuple[float, str]]:
    """Sample the text of assistant message ``index`` until ``until(page)`` holds; return (time, text)."""
    samples: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        texts = replies(page)
        if len(texts) > index:
            samples.append((time.monotonic(), texts[index]))
        if until(page):
            return samples
        time.sleep(0.03)
    raise AssertionError(f"gave up after {timeout_s} s; last text: {samples[-1:]}")


def test_a_message_gets_a_streamed_reply(streamlit_server, page):
    open_app(page, streamlit_server)
    set_sampling(page, temperature=0, max_new_tokens=48)
    send(page, "Describe Paris in two sentences.")
    page.get_by_text("Describe Paris in two sentences.").wait_for()
    samples = watch_reply(page, 0, lambda p: len(captions(p)) >= 1)
    texts = [text for _, text in samples if text]
    assert texts[-1].strip()  # the words are the 135M model's pick, which changes with the CPU
    lengths = sorted(set(map(len, texts)))
    assert len(lengths) >= 3, f"the reply did not grow while it was written: {lengths}"
    assert [len(t) for t in texts] == sorted(len(t) for t in texts), "streamed text only grows"
    assert " tokens · " in captions(page)[0] and "tok/s" in captions(page)[0]


def test_stop_halts_the_reply_and_keeps_it(streamlit_server, page):
    open_app(page, streamlit_server)
    send(page, STORY)
    watch_reply(page, 0, lambda p: len((replies(p) or [""])[0]) > 80)
    page.locator(STOP_BUTTON).click()
    clicked = time.monotonic()

    samples = watch_reply(page, 0, lambda p: time.monotonic() - clicked > 4, timeout_s=10)
    final = samples[-1][1]
    last_change = max(
        (at for (at, text), (_, before) in zip(samples[1:], samples[:-1], strict=True) if text != before),
        default=clicked,
    )
    assert last_change - clicked < 2.5, f"the reply kept growing {last_change - clicked:.1f} s after Stop"
    wait_idle(page, timeout_s=10)
    assert page.locator(CHAT_INPUT).is_enabled()

    # Any interaction reruns the page, which redraws the history from the session, with the stats line.
    set_sampling(page, max_new_tokens=64)
    watch_reply(page, 0, lambda p: len(captions(p)) == 1, timeout_s=60)
    kept = replies(page)
    assert len(kept) == 1 and final.strip()
    assert kept[0].startswith(final[:60]), "the partial reply is kept in the history"
    # The generation itself halted: at most a token or two were written after the page froze.
    assert len(kept[0]) < len(final) + 40, (final, kept[0])
    assert captions(page)[0].endswith("· stopped")


def test_two_browser_sessions_get_their_own_answers(streamlit_server, new_page):
    # Which words each answer has is the 135M model's pick, which changes with the CPU: each session must
    # show its own question and one whole answer with its stats. That each generation answers its own
    # prompt is exact in test_models_generation.py (two threads, answers held by a schema).
    questions = ["France", "Germany"]
    pages = {country: open_app(new_page(), streamlit_server) for country in questions}
    for page in pages.values():
        set_sampling(page, temperature=0, max_new_tokens=32)

    # Both at once: on llama.cpp they share the model's decode steps (test_llamacpp_browser.py checks that
    # both progress together); on transformers the second waits for the first (the model's lock).
    for country, page in pages.items():
        page.fill(CHAT_INPUT, f"Which city is the capital of {country}?")
    for page in pages.values():
        page.press(CHAT_INPUT, "Enter")

    for country, page in pages.items():
        watch_reply(page, 0, lambda p: len(captions(p)) >= 1)
        answer = replies(page)
        assert len(answer) == 1 and answer[0].strip(), (country, answer)
        assert " tokens · " in captions(page)[0]
        messages = page.locator("[data-testid='stChatMessageContent']").all_inner_texts()
        assert len(messages) == 2 and messages[0].splitlines()[0] == f"Which city is the capital of {country}?"
