"""Holding back stop strings while text streams: the same cuts as before, in time linear in the text."""

from __future__ import annotations

import random

import pytest

from workbench.modes.tool import _HeldBackText


def _cut_whole(markers: list[str], chunks: list[str]) -> str:
    """What a stream must show: its text up to the first marker found once each chunk has arrived."""
    text, shown = "", ""
    for chunk in chunks:
        text += chunk
        found = [i for i in (text.find(m) for m in markers if m) if i != -1]
        if found:
            return text[: min(found)]
        shown = text
    return shown


def _feed(markers: list[str], chunks: list[str]) -> tuple[str, list[str]]:
    held = _HeldBackText(markers)
    pieces = [held.feed(chunk) for chunk in chunks] + [held.flush()]
    return "".join(pieces), pieces


def test_the_streamed_text_is_cut_where_the_whole_text_is() -> None:
    rng = random.Random(25)
    for _ in range(3000):
        markers = [
            "".join(rng.choice("ab") for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(0, 3))
        ]
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        chunks, start = [], 0
        while start < len(text):
            size = rng.randint(1, 4)
            chunks.append(text[start : start + size])
            start += size
        shown, pieces = _feed(markers, chunks)
        assert shown == _cut_whole(markers, chunks), (markers, chunks)
        sent = ""
        for piece in pieces[:-1]:  # nothing sent is ever the start of a marker still being written
            sent += piece
            assert not any(m in sent for m in markers if m)


@pytest.mark.timeout(120)
def test_long_text_and_long_stop_strings_stay_linear() -> None:
    # Four stop strings of the API's longest, each almost matching the text all the time: feeding
    # re-searched the whole text per chunk and tried every length of every stop string (issue 25:
    # 16 stop strings x 400,000 characters ran past 120 s).
    markers = ["a" * 255 + "b", "ab" * 128, "a" * 256 + "c", "ba" * 128]
    shown, _ = _feed(markers, ["a"] * 400_000)
    assert shown == "a" * 400_000
