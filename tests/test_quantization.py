"""``--quantize``: which library quantizes (torchao when installed, else bitsandbytes), and the refusals.

The quantized kernels need a CUDA GPU: the speed and memory are measured by ``bench/device_check.py``.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from workbench.errors import ModelLoadError
from workbench.models import loading
from workbench.models.loading import quantization_config, quantization_library


@pytest.fixture
def installed(monkeypatch):
    """Pretend exactly the named libraries are installed."""
    names: set[str] = set()
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name in ("torchao", "bitsandbytes"):
            return object() if name in names else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(loading.importlib.util, "find_spec", find_spec)
    return names


@pytest.mark.parametrize(
    ("present", "env", "library"),
    [
        ({"torchao", "bitsandbytes"}, {}, "torchao"),
        ({"bitsandbytes"}, {}, "bitsandbytes"),
        (set(), {}, "bitsandbytes"),
        ({"torchao", "bitsandbytes"}, {"WORKBENCH_QUANTIZE_WITH": "bitsandbytes"}, "bitsandbytes"),
        ({"bitsandbytes"}, {"WORKBENCH_QUANTIZE_WITH": "TorchAO"}, "torchao"),
    ],
)
def test_which_library_quantizes(installed, present, env, library):
    installed.update(present)
    assert quantization_library(env) == library


def test_an_unknown_library_says_which_to_choose():
    with pytest.raises(ModelLoadError, match="choose one of auto, torchao, bitsandbytes"):
        quantization_library({"WORKBENCH_QUANTIZE_WITH": "gptq"})


@pytest.mark.parametrize("library", ["torchao", "bitsandbytes"])
def test_a_missing_library_says_how_to_install_it(installed, library):
    with pytest.raises(ModelLoadError, match=f"needs {library}: pip install {library}"):
        quantization_config("int4", "cuda", torch.bfloat16, {"WORKBENCH_QUANTIZE_WITH": library})


def test_a_cpu_is_refused_whichever_library(installed):
    installed.update({"torchao", "bitsandbytes"})
    for library in ("torchao", "bitsandbytes"):
        with pytest.raises(ModelLoadError, match=r"needs a CUDA GPU .* llama.cpp backend"):
            quantization_config("int8", "cpu", torch.float32, {"WORKBENCH_QUANTIZE_WITH": library})


def test_torchao_int4_needs_bfloat16(installed):
    installed.add("torchao")
    with pytest.raises(ModelLoadError, match=r"use --dtype bfloat16 .* WORKBENCH_QUANTIZE_WITH=bitsandbytes"):
        quantization_config("int4", "cuda", torch.float16, {})


def test_torchao_configs_are_weight_only_int8_and_tinygemm_int4():
    pytest.importorskip("torchao", reason="torchao is optional: installed on GPU machines")
    int8 = quantization_config("int8", "cuda", torch.bfloat16, {"WORKBENCH_QUANTIZE_WITH": "torchao"})
    int4 = quantization_config("int4", "cuda", torch.bfloat16, {"WORKBENCH_QUANTIZE_WITH": "torchao"})
    assert type(int8.quant_type).__name__ == "Int8WeightOnlyConfig"
    assert type(int4.quant_type).__name__ == "Int4WeightOnlyConfig"
    assert int4.quant_type.group_size == 128
    packing = int4.quant_type.int4_packing_format
    assert str(getattr(packing, "value", packing)) == "tile_packed_to_4d"
