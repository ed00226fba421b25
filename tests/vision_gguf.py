"""The tiny vision model of tests/vision_fixture.py as llama.cpp files: a GGUF model and its mmproj GGUF.

Converted with llama.cpp's own ``convert_hf_to_gguf.py`` (and ``--mmproj``) from the source package of
the installed llama-cpp-python (the one scripts/setup.sh builds from), whose ``vendor/llama.cpp/gguf-py``
is the ``gguf`` package the converter matches. The converter and the converted files are cached under
``~/.cache/workbench`` (``WORKBENCH_CACHE_DIR``): the converter once per llama-cpp-python version, the
files once per version and recipe. A test is skipped, saying why, only when the source package cannot be
downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests import vision_fixture

#: The converted files, in one folder (so the model finds its projector beside it).
MODEL_NAME = "tiny-vlm.gguf"
MMPROJ_NAME = "mmproj-tiny-vlm.gguf"
#: What the converter needs from the source package (under ``vendor/llama.cpp/``).
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
_NETWORK_HINTS = ("Could not find a version", "No matching distribution", "Failed to establish",
                  "Network is unreachable", "Temporary failure in name resolution", "Max retries exceeded")  # fmt: skip


def _cache_root() -> Path:
    base = os.environ.get("WORKBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "workbench")
    return Path(base)


def llama_cpp_version() -> str:
    """The installed llama-cpp-python's version."""
    return importlib.metadata.version("llama-cpp-python")


def converter_dir() -> Path:
    """llama.cpp's ``convert_hf_to_gguf.py`` with its ``conversion`` and ``gguf-py``, for this version.

    Taken from the source package ``$WORKBENCH_LLAMA_SDIST`` names, else downloaded with pip.
    """
    version = llama_cpp_version()
    folder = _cache_root() / "llama-cpp-converter" / version
    if (folder / "convert_hf_to_gguf.py").is_file():
        return folder
    with tempfile.TemporaryDirectory() as download:
        sdist = os.environ.get("WORKBENCH_LLAMA_SDIST") or _download_sdist(version, Path(download))
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with tarfile.open(sdist) as archive:
                for member in archive.getmembers():
                    _, _, inner = member.name.partition("/vendor/llama.cpp/")
                    if inner and inner.startswith(_CONVERTER_PARTS) and (member.isfile() or member.isdir()):
                        member.name = inner
                        archive.extract(member, tmp, filter="data")
            if not (tmp / "convert_hf_to_gguf.py").is_file():
                raise RuntimeError(f"{sdist} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.replace(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _download_sdist(version: str, into: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-binary", ":all:", "-d", str(into), f"llama-cpp-python=={version}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(hint in output for hint in _NETWORK_HINTS):
            pytest.skip(
                f"llama-cpp-python {version}'s source package (the GGUF converter) cannot be downloaded"
            )
        raise RuntimeError(f"pip download of llama-cpp-python {version} failed:\n{output[-2000:]}")
    return str(next(into.glob("llama_cpp_python-*.tar.gz")))


def tiny_vlm_gguf() -> tuple[Path, Path]:
    """The tiny vision model as ``(model GGUF, mmproj GGUF)``, side by side in one folder, converted once."""
    recipe = Path(vision_fixture.__file__).read_bytes() + Path(__file__).read_bytes()
    key = f"{llama_cpp_version()}-{hashlib.sha256(recipe).hexdigest()[:12]}"
    folder = _cache_root() / "test-models" / f"{vision_fixture.VERSION}-gguf-{key}"
    model, mmproj = folder / MODEL_NAME, folder / MMPROJ_NAME
    if model.is_file() and mmproj.is_file():
        return model, mmproj
    converter = converter_dir()
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        source = tmp / "hf"
        shutil.copytree(vision_fixture.tiny_vlm_dir(), source)
        # The converter takes the text model's class from text_config.architectures (Idefics3's top-level
        # class is the projector's); SmolVLM's own config names it so.
        config = json.loads((source / "config.json").read_text())
        config["text_config"].setdefault("architectures", ["LlamaForCausalLM"])
        (source / "config.json").write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONPATH": str(converter / "gguf-py"), "NO_LOCAL_GGUF": ""}
        for name, extra in ((MODEL_NAME, []), (MMPROJ_NAME, ["--mmproj"])):
            done = subprocess.run(
                [sys.executable, str(converter / "convert_hf_to_gguf.py"), str(source), *extra,
                 "--outtype", "f16", "--outfile", str(tmp / name)],
                capture_output=True, text=True, timeout=600, env=env, cwd=converter,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"convert_hf_to_gguf.py {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
        shutil.rmtree(source)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, mmproj
