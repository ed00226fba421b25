"""Choosing the device and dtype a model runs in."""

from __future__ import annotations

import torch

from workbench.errors import ModelLoadError
from workbench.models.spec import DEVICES, DTYPES


def resolve_device(device: str) -> str:
    """Turn ``auto`` into cuda, mps or cpu, and check an explicit choice is available.

    Raises:
        ModelLoadError: If the device is unknown or not present on this machine.
    """
    if device not in DEVICES:
        raise ModelLoadError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        raise ModelLoadError("Device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'.")
    if device == "mps" and not mps:
        raise ModelLoadError(
            "Device 'mps' was asked for but Apple MPS is not available; use 'auto' or 'cpu'."
        )
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """Turn a dtype name into a torch dtype; ``auto`` is float32 on cpu and half precision on a GPU.

    Raises:
        ModelLoadError: If the name is unknown.
    """
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    if dtype == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device == "mps":
            return torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
