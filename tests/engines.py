"""The engines the real-model tests run on, for fixtures and parametrized tests."""

from __future__ import annotations

from workbench.models.backends import llama_cpp_installed

#: llama.cpp (the default for GGUF files and the embedded model) when it is installed, and transformers
#: (Hugging Face folders, GPUs, the fallback) always.
ENGINES = ["llama.cpp", "transformers"] if llama_cpp_installed() else ["transformers"]
