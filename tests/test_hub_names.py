"""Hub names and the files they stand for: pure functions, no server."""

from __future__ import annotations

import pytest

from workbench.errors import ModelNotFoundError
from workbench.models.backends import is_gguf_source
from workbench.models.hub_names import (
    HubName,
    choose_gguf,
    parse_hub_name,
    quant_of,
    split_complete,
    transformers_files,
)
from workbench.models.spec import ModelSpec


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", HubName("Qwen/Qwen2.5-0.5B-Instruct")),
        ("THUDM/chatglm3-6b@v1.0", HubName("THUDM/chatglm3-6b", revision="v1.0")),
        ("bartowski/Qwen2.5-7B-Instruct-GGUF", HubName("bartowski/Qwen2.5-7B-Instruct-GGUF", gguf=True)),
        ("org/repo-GGUF:q4_k_m", HubName("org/repo-GGUF", quant="q4_k_m", gguf=True)),
        ("hf.co/org/repo:Q8_0", HubName("org/repo", quant="Q8_0", gguf=True)),
        ("hf.co/org/repo", HubName("org/repo", gguf=True)),
        ("https://huggingface.co/org/repo", HubName("org/repo", gguf=True)),
        ("org/repo@abc123:Q4_0", HubName("org/repo", revision="abc123", quant="Q4_0", gguf=True)),
        ("embedded", None),
        ("/models/qwen", None),
        ("./org/repo", None),
        ("~/org/repo", None),
        ("models/m.gguf", None),
        ("openai:http://host:8000/v1#model", None),
        ("http://host:8000/v1", None),
        ("just-a-word", None),
        ("a/b/c", None),
    ],
)
def test_parse_hub_name(source, expected):
    assert parse_hub_name(source) == expected


def test_an_existing_relative_path_is_a_path_not_a_name(tmp_path, monkeypatch):
    (tmp_path / "org" / "repo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert parse_hub_name("org/repo") is None
    assert parse_hub_name("org/other") == HubName("org/other")


def test_gguf_names_choose_llama_cpp_and_folders_transformers():
    assert is_gguf_source(ModelSpec(source="org/repo-GGUF:Q4_K_M"))
    assert is_gguf_source(ModelSpec(source="hf.co/org/repo"))
    assert not is_gguf_source(ModelSpec(source="Qwen/Qwen2.5-0.5B-Instruct"))
    assert ModelSpec(source="org/repo-GGUF:Q4_K_M").label == "org/repo-GGUF:Q4_K_M"


@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("Q8_0/model-Q8_0.gguf", "Q8_0"),
        ("model-f16.gguf", "F16"),
    ],
)
def test_quant_of(filename, quant):
    assert quant_of(filename) == quant


FILES = [
    "README.md",
    "m-Q2_K.gguf",
    "m-Q4_K_M.gguf",
    "m-Q8_0-00002-of-00002.gguf",
    "m-Q8_0-00001-of-00002.gguf",
    "mmproj-m-f16.gguf",
]


def test_choose_gguf_default_is_q4_k_m_and_said_to_be_a_default():
    assert choose_gguf(HubName("o/m-GGUF", gguf=True), FILES) == ("Q4_K_M", ["m-Q4_K_M.gguf"], True)


def test_choose_gguf_without_q4_k_m_takes_the_next_preferred():
    assert choose_gguf(HubName("o/m-GGUF", gguf=True), ["m-Q2_K.gguf", "m-Q8_0.gguf"])[0] == "Q8_0"


def test_choose_gguf_takes_every_part_of_a_split_file_in_order():
    quant, files, default = choose_gguf(HubName("o/m-GGUF", quant="q8_0", gguf=True), FILES)
    assert (quant, files, default) == (
        "Q8_0",
        ["m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"],
        False,
    )
    assert split_complete(files) and not split_complete(files[:1])


def test_an_unknown_quant_lists_those_the_repo_has():
    with pytest.raises(ModelNotFoundError) as info:
        choose_gguf(HubName("o/m-GGUF", quant="Q5_K_S", gguf=True), FILES)
    assert str(info.value) == (
        "o/m-GGUF has no Q5_K_S quantization; it has: Q2_K, Q4_K_M, Q8_0. Use one of them, e.g. o/m-GGUF:Q2_K."
    )


def test_a_repo_without_gguf_files_says_to_drop_the_quant():
    with pytest.raises(ModelNotFoundError, match=r"o/m has no \.gguf file\. Drop the ':QUANT'"):
        choose_gguf(HubName("o/m", quant="Q4_0", gguf=True), ["config.json", "model.safetensors"])


def test_transformers_files_prefer_safetensors_and_skip_subfolders():
    files = [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "onnx/model.onnx",
        "original/consolidated.pth",
        "README.md",
    ]
    assert transformers_files(files) == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
