"""``ask --image`` and the Python API's ``images=``: sent to a vision model, refused by a text-only one.

The tiny random-weight vision model answers noise: the plumbing is asserted, never the text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli
from tests.vision_fixture import sample_image
from workbench.chat_model import ChatModel
from workbench.errors import ImageInputError


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(sample_image((30, 20), "green", "JPEG"))
    return path


def test_ask_sends_images_to_a_vision_model_and_saves_them(
    tiny_vlm: Path, photo: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    second = tmp_path / "second.png"
    second.write_bytes(sample_image())
    result = run_cli(
        "ask", "--model", str(tiny_vlm), "--json", "--save", "--temperature", "0", "--max-new-tokens", "4",
        "--image", str(photo), "--image", str(second), "What is in these?",
        env={"WORKBENCH_DATA_DIR": str(data)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)["messages"]
    assert messages[0]["image_count"] == 2 and messages[0]["content"] == "What is in these?"
    assert messages[1]["stats"]["new_tokens"] > 0
    assert "[workbench] Saved as" in result.stderr
    shown = run_cli("history", "export", env={"WORKBENCH_DATA_DIR": str(data)})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count('"images"') >= 1 and "iVBORw0KGgo" in shown.stdout  # PNG, base64


@pytest.mark.model
def test_ask_with_an_image_on_a_text_only_model_exits_1_before_generating(
    photo: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "ask", "--save", "--image", str(photo), "What is this?", env={"WORKBENCH_DATA_DIR": str(tmp_path / "d")}
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert "reads text only, and this conversation holds images" in result.stderr
    assert "load a vision model" in result.stderr
    assert "Saved as" not in result.stderr  # the question was taken back: nothing half-recorded


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"just some text", "not a readable image"), (sample_image((300, 200))[:-300], "not a readable image")],
)
def test_ask_refuses_a_bad_image_before_loading_the_model(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "lies.png"
    path.write_bytes(content)
    result = run_cli(
        "ask", "--model", str(tmp_path / "no-such-model"), "--image", str(path), "hi", timeout=120
    )
    assert result.returncode == 1
    assert f"{path} cannot be used: {expected}" in result.stderr
    assert "does not exist" not in result.stderr  # the image was checked first


def test_ask_image_is_for_chat_mode_only(photo: Path) -> None:
    result = run_cli("ask", "--mode", "tool", "--image", str(photo), "hi", timeout=120)
    assert result.returncode == 1 and "--image is sent in chat mode only" in result.stderr


def test_the_python_api_sends_images_by_path(vlm_model: ChatModel, photo: Path) -> None:
    reply, history = vlm_model.chat("What is it?", images=[photo], settings={"max_new_tokens": 3})
    assert history[-2].images and history[-2].images[0].startswith(b"\x89PNG")
    stats = history[-1].stats
    assert stats is not None and stats["new_tokens"] > 0 and isinstance(reply, str)


@pytest.mark.model
def test_the_python_api_on_a_text_only_model_refuses_images(chat_model: ChatModel, photo: Path) -> None:
    with pytest.raises(ImageInputError, match="reads text only"):
        chat_model.chat("What is it?", images=[photo])
