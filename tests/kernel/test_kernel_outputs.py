"""Execution and its text for the model, without a kernel."""

from __future__ import annotations

import base64
import io

from PIL import Image

from kernel import Execution
from kernel.outputs import OutputCollector, cut_marker, strip_ansi


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def message(kind: str, **content: object) -> dict:
    return {"msg_type": kind, "header": {"msg_type": kind}, "content": content}


def collect(messages: list[dict], max_chars: int = 10_000, max_image_bytes: int = 10**7) -> Execution:
    collector = OutputCollector(Execution(code="x"), max_chars, max_image_bytes)
    for msg in messages:
        collector.add(msg)
    return collector.finish()


def test_outputs_keep_their_order_and_kinds() -> None:
    image = base64.b64encode(png(64, 48)).decode()
    execution = collect(
        [
            message("stream", name="stdout", text="a\n"),
            message("stream", name="stdout", text="b\n"),
            message("display_data", data={"image/png": image, "text/plain": "<Figure>"}),
            message("stream", name="stderr", text="warn\n"),
            message("execute_result", data={"text/plain": "3", "text/html": "<b>3</b>"}),
        ]
    )
    assert [o.kind for o in execution.outputs] == ["stream", "display", "stream", "result"]
    assert execution.outputs[0].text == "a\nb\n"  # consecutive chunks of one stream merged
    assert execution.stdout == "a\nb\n" and execution.stderr == "warn\n"
    assert execution.result == "3" and execution.outputs[-1].data["text/html"] == "<b>3</b>"
    assert execution.images == [png(64, 48)]
    assert execution.for_model() == "a\nb\n[image 1: 64x48]\nwarn\n3"


def test_error_keeps_name_value_and_plain_traceback() -> None:
    traceback = [
        "\x1b[0;31m---------\x1b[0m",
        "\x1b[0;32mCell In[1], line 1\x1b[0m",
        "ZeroDivisionError: division by zero",
    ]
    execution = collect(
        [message("error", ename="ZeroDivisionError", evalue="division by zero", traceback=traceback)]
    )
    assert execution.error is not None
    assert execution.error.name == "ZeroDivisionError"
    assert "\x1b" not in execution.error.traceback
    text = execution.for_model()
    assert text.endswith("ZeroDivisionError: division by zero")
    assert "Cell In[1], line 1" in text and text.count("division by zero") == 1


def test_long_output_is_cut_with_a_visible_marker_and_the_error_kept() -> None:
    execution = collect(
        [
            message("stream", name="stdout", text="".join(f"line {i}\n" for i in range(5000))),
            message("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]),
        ],
        max_chars=1_000_000,
    )
    text = execution.for_model(max_chars=500)
    assert "line 0\n" in text and "line 4999" in text  # head and tail kept
    assert "more characters cut ...]" in text
    assert text.endswith("ValueError: bad")
    assert len(text) < 700


def test_the_collector_caps_memory_and_counts_what_it_dropped() -> None:
    chunks = [message("stream", name="stdout", text="x" * 1000) for _ in range(50)]
    execution = collect(chunks, max_chars=10_000)
    assert len(execution.stdout) == 10_000
    assert execution.cut_chars == 40_000
    assert cut_marker(40_000) in execution.stderr
    assert cut_marker(40_000) in execution.for_model(max_chars=100_000)


def test_images_over_the_cap_are_dropped_with_a_note() -> None:
    image = base64.b64encode(png(10, 10)).decode()
    execution = collect(
        [message("display_data", data={"image/png": image})] * 3, max_image_bytes=len(png(10, 10)) * 2
    )
    assert len(execution.images) == 2
    assert "image dropped" in execution.for_model()


def test_notes_and_empty_output() -> None:
    assert Execution().for_model() == "[no output]"
    note = "The kernel was restarted on request, so its variables and imports are lost."
    assert Execution(note=note, restarted=True).for_model() == f"[{note}]"


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b]0;title\x07ok") == "red ok"
