"""Loading models: every bad input gets a message naming the problem and the fix; the GGUF cache works."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.engines import ENGINES
from workbench.chat_model import ChatModel
from workbench.dialects import ChatTemplateDialect
from workbench.errors import ChatTemplateError, ModelError, ModelLoadError, ModelNotFoundError
from workbench.models.loading import cache_dir, embedded_gguf_path, file_sha256
from workbench.models.spec import ModelSpec


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty conversion cache."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def load(source: Path | str, backend: str = "auto") -> ChatModel:
    return ChatModel.load(ModelSpec(source=str(source), device="cpu", backend=backend))


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Each engine installed here: every bad GGUF file gets the same clear error on each."""
    return str(request.param)


def chatglm_like_folder(folder: Path) -> Path:
    """A folder shaped like ChatGLM3-6B: its config and tokenizer point at Python files it ships."""
    folder.mkdir()
    auto_map = {
        "AutoConfig": "configuration_chatglm.ChatGLMConfig",
        "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
        "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "chatglm", "auto_map": auto_map}))
    tokenizer_map = {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": tokenizer_map}))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return folder


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / "models"
    monkeypatch.delenv("WORKBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "workbench" / "models"


def test_embedded_gguf_ships_with_the_wheel():
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_path(tmp_path, cache):
    with pytest.raises(ModelNotFoundError) as info:
        load(tmp_path / "no-such-model")
    assert str(info.value) == (
        f"Model path {str(tmp_path / 'no-such-model')!r} does not exist. Give a Hugging Face model folder, a .gguf file, a model "
        "name on the Hugging Face Hub (ORG/REPO, ORG/REPO-GGUF:QUANT), or 'embedded'."
    )


def test_folder_without_weights(tmp_path, cache):
    folder = tmp_path / "half-downloaded"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelNotFoundError) as info:
        load(folder)
    assert str(info.value) == (
        f"Folder {str(folder)!r} holds no model weights (*.safetensors, *.bin or *.gguf). "
        "Point to the folder that contains config.json and the weight files."
    )


@pytest.mark.parametrize("name", ["weights.txt", "model.safetensors", "README"])
def test_a_file_that_is_not_gguf(tmp_path, cache, name):
    path = tmp_path / name
    path.write_bytes(b"something")
    with pytest.raises(ModelNotFoundError) as info:
        load(path)
    assert (
        str(info.value)
        == f"{str(path)!r} is a file but not a .gguf file. Give a .gguf file or a model folder."
    )


@pytest.mark.parametrize(
    ("content", "magic"),
    [(b"", "b''"), (b"PK\x03\x04 a zip file", r"b'PK\x03\x04'"), (b"ggufGGUF", "b'gguf'")],
)
def test_a_gguf_with_the_wrong_magic_bytes(tmp_path, cache, content, magic, engine):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load(path, engine)
    assert str(info.value) == (
        f"model.gguf is not a GGUF file (bad magic bytes {magic}). The file is corrupt or of another format; "
        "download it again or choose another model."
    )


def test_random_bytes_gguf(tmp_path, cache, engine):
    path = tmp_path / "random.gguf"
    path.write_bytes(b"\x01\x02\x03\x04" + os.urandom(4096))
    with pytest.raises(ModelLoadError, match=r"random.gguf is not a GGUF file \(bad magic bytes"):
        load(path, engine)


@pytest.mark.parametrize("size", [16, 4096, 1 << 20], ids=["16B", "4KiB", "1MiB"])
def test_truncated_gguf(tmp_path, cache, size, engine):
    path = tmp_path / "truncated.gguf"
    with embedded_gguf_path().open("rb") as handle:
        path.write_bytes(handle.read(size))
    with pytest.raises(ModelLoadError) as info:
        load(path, engine)
    message = str(info.value)
    assert message.startswith(f"Could not load the model from {path}: ")
    assert message.endswith(
        "The files may be corrupt, truncated or of an unsupported architecture; check them or choose another model."
    )
    assert not list(cache.glob("*/workbench.json")), "a failed conversion must not be cached"


def test_model_needing_trust_remote_code(tmp_path, cache):
    folder = chatglm_like_folder(tmp_path / "chatglm3-6b")
    with pytest.raises(ModelLoadError) as info:
        load(folder)
    assert str(info.value) == (
        "chatglm3-6b ships its own Python code and loads only if you trust it: pass --trust-remote-code "
        "on the CLI or tick 'Trust remote code' in the sidebar."
    )


def test_trusted_remote_code_that_is_missing_still_gets_a_model_error(tmp_path, cache):
    folder = chatglm_like_folder(tmp_path / "chatglm3-6b")
    with pytest.raises(ModelError) as info:
        ChatModel.load(ModelSpec(source=str(folder), device="cpu", trust_remote_code=True))
    message = str(info.value)
    assert message.startswith(f"Could not load the model from {folder}: ")
    assert "tokenization_chatglm.py" in message
    assert ".." not in message


def test_dialect_refuses_a_tokenizer_without_chat_template():
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplateDialect(SimpleNamespace(chat_template=None))
    assert str(info.value) == (
        "This model's tokenizer has no chat template, so Workbench cannot tell how to format a conversation. "
        "Use an instruction-tuned (chat) model, or add a chat_template to its tokenizer_config.json / "
        "chat_template.jinja."
    )


@pytest.mark.model
def test_model_without_chat_template(tmp_path, cache, transformers_model):
    """The embedded model's converted folder, minus its chat template: a base model, as users bring."""
    folder = tmp_path / "base-model"
    folder.mkdir()
    for file in Path(transformers_model.info.loaded_from).iterdir():
        if file.name not in ("chat_template.jinja", "workbench.json"):
            (folder / file.name).symlink_to(file)
    with pytest.raises(ChatTemplateError, match="has no chat template"):
        load(folder)


@pytest.mark.model
def test_gguf_is_converted_once_then_loaded_from_the_cache(cache, transformers_model):
    gguf = embedded_gguf_path()
    steps: list[str] = []
    started = time.perf_counter()
    first = ChatModel.load(ModelSpec(device="cpu", backend="transformers"), progress=steps.append)
    first_s = time.perf_counter() - started

    folder = cache / file_sha256(gguf)[:20]
    meta = json.loads((folder / "workbench.json").read_text())
    assert meta["gguf"] == str(gguf)
    assert (folder / "model.safetensors").is_file()
    assert first.info.loaded_from == str(folder)
    assert any(step.startswith("Converting SmolLM2-135M-Instruct.Q4_1.gguf to safetensors") for step in steps)
    del first

    steps.clear()
    started = time.perf_counter()
    second = ChatModel.load(ModelSpec(device="cpu", backend="transformers"), progress=steps.append)
    second_s = time.perf_counter() - started
    assert not any(step.startswith("Converting") for step in steps)
    assert second.info.loaded_from == str(folder)
    assert second_s < 10 and second_s < first_s / 2, (first_s, second_s)
