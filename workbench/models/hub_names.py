"""Model names on the Hugging Face Hub, and which of a repo's files a name stands for.

No network and no ``huggingface_hub`` here: parsing a name and choosing files from a repo's file list
are pure functions, so the loader, the CLI and the sidebar agree on them and tests need no server.

Names (as Ollama and llama.cpp's ``-hf`` take them):

- ``ORG/REPO`` or ``ORG/REPO@REVISION``: a Hugging Face model, run by transformers;
- ``ORG/REPO-GGUF:QUANT``, ``ORG/REPO-GGUF`` or ``hf.co/ORG/REPO:QUANT``: the GGUF file(s) of that
  quantization in the repo, run by llama.cpp.

A path that exists on disk is always a path, never a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ModelNotFoundError

#: Quantizations picked, in this order, when a name gives none (llama.cpp's and Ollama's default first).
DEFAULT_QUANTS = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q4_1", "Q8_0", "Q6_K", "F16", "BF16")
_HOST_PREFIXES = ("hf.co/", "huggingface.co/", "https://huggingface.co/", "https://hf.co/")
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_NAME = re.compile(
    rf"(?P<repo>{_PART}/{_PART})(?:@(?P<rev>[A-Za-z0-9._/-]+?))?(?::(?P<quant>[A-Za-z0-9_.-]+))?"
)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})$")
# Files of a transformers model: its config, tokenizer, template and weights (not ONNX, not GGUF).
_TRANSFORMERS_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".tiktoken", ".jinja", ".py")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class HubName:
    """A parsed model name.

    Attributes:
        repo_id: ``ORG/REPO``.
        revision: A branch, tag or commit; None for the default branch.
        quant: The quantization asked for (``Q4_K_M``), or None.
        gguf: Whether the name stands for GGUF files (llama.cpp) rather than a transformers model.
    """

    repo_id: str
    revision: str | None = None
    quant: str | None = None
    gguf: bool = False

    @property
    def ref(self) -> str:
        """The revision to ask for: the given one or ``main``."""
        return self.revision or "main"

    def with_quant(self, quant: str) -> str:
        """The name with its quantization spelled out (``ORG/REPO:Q4_K_M``)."""
        revision = f"@{self.revision}" if self.revision else ""
        return f"{self.repo_id}{revision}:{quant}"

    def __str__(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        quant = f":{self.quant}" if self.quant else ""
        return f"{self.repo_id}{revision}{quant}"


def parse_hub_name(source: str) -> HubName | None:
    """Return the Hub name a model source spells, or None if it is a path, ``embedded`` or a server.

    A source that exists on disk is a path. ``hf.co/`` names and names with ``:QUANT`` or a repo ending
    in ``GGUF`` are GGUF names.
    """
    text = source.strip()
    host = next((p for p in _HOST_PREFIXES if text.lower().startswith(p)), "")
    if not host and (text.startswith(("/", ".", "~")) or text.lower().endswith(".gguf")):
        return None
    match = _NAME.fullmatch(text[len(host) :])
    if match is None or (not host and Path(text).expanduser().exists()):
        return None
    repo_id = match["repo"]
    quant = match["quant"]
    gguf = bool(host) or quant is not None or repo_id.lower().endswith("gguf")
    return HubName(repo_id=repo_id, revision=match["rev"], quant=quant, gguf=gguf)


def quant_of(filename: str) -> str:
    """The quantization label of a GGUF file name, upper case (``qwen-7b-q4_k_m-00001-of-00002.gguf``: Q4_K_M)."""
    stem = _SPLIT.sub(
        "", Path(filename).name[: -len(".gguf")] if filename.lower().endswith(".gguf") else filename
    )
    return re.split(r"[-.]", stem)[-1].upper()


def gguf_quants(filenames: list[str]) -> dict[str, list[str]]:
    """The repo's GGUF files grouped by quantization, each group sorted (split parts in order).

    Projector files (``mmproj``) and files in sub-folders other than a quantization's own are kept
    with their label too; vision projectors are left out since they are no chat model.
    """
    groups: dict[str, list[str]] = {}
    for name in filenames:
        if not name.lower().endswith(".gguf") or "mmproj" in name.lower():
            continue
        groups.setdefault(quant_of(name), []).append(name)
    return {quant: sorted(files) for quant, files in sorted(groups.items())}


def choose_gguf(name: HubName, filenames: list[str]) -> tuple[str, list[str], bool]:
    """Choose the GGUF file(s) a name stands for.

    Returns:
        The quantization, its files (every part of a split file, first part first), and whether it was
        picked by default (the name gave none).

    Raises:
        ModelNotFoundError: If the repo has no GGUF file, or not the quantization asked for (the message
            lists the ones it has).
    """
    groups = gguf_quants(filenames)
    if not groups:
        raise ModelNotFoundError(
            f"{name.repo_id} has no .gguf file. Drop the ':QUANT' to run it with transformers "
            f"(--model {name.repo_id}), or choose a repo of GGUF files (often named ...-GGUF)."
        )
    if name.quant:
        quant = name.quant.upper()
        if quant not in groups:
            raise ModelNotFoundError(
                f"{name.repo_id} has no {name.quant} quantization; it has: {', '.join(groups)}. "
                f"Use one of them, e.g. {name.with_quant(next(iter(groups)))}."
            )
        return quant, groups[quant], False
    quant = next((q for q in DEFAULT_QUANTS if q in groups), next(iter(groups)))
    return quant, groups[quant], True


#: Projector precisions preferred when a GGUF repo has several (they are small: the best is taken).
PROJECTOR_QUANTS = ("F16", "BF16", "F32", "Q8_0")


def choose_projector(model_files: list[str], filenames: list[str]) -> str | None:
    """The vision projector (``mmproj*.gguf``) to fetch with a GGUF model, from its folder, or None.

    llama.cpp reads images through it (:mod:`workbench.models.llamacpp_vision` finds it beside the model).
    """
    folder = Path(model_files[0]).parent
    found = sorted(
        f
        for f in filenames
        if Path(f).parent == folder and Path(f).name.lower().startswith("mmproj") and f.lower().endswith(".gguf")
    )
    preferred = (f for quant in PROJECTOR_QUANTS for f in found if quant_of(f) == quant)
    return next(preferred, found[0] if found else None)


def split_complete(files: list[str]) -> bool:
    """Whether a quantization's files hold every part of a split GGUF (a single file is complete)."""
    parts = [_SPLIT.search(Path(f).name[: -len(".gguf")]) for f in files]
    if not any(parts):
        return len(files) == 1
    counts = {int(m[2]) for m in parts if m}
    return len(counts) == 1 and len(files) == counts.pop()


def transformers_files(filenames: list[str]) -> list[str]:
    """The files of a repo a transformers model needs: top-level config, tokenizer and weights.

    Safetensors weights are preferred; ``.bin`` files are fetched only when there is no safetensors.
    """
    top = [f for f in filenames if "/" not in f and f.lower().endswith((*_TRANSFORMERS_SUFFIXES, ".bin"))]
    has_safetensors = any(f.endswith(".safetensors") for f in top)
    chosen = [
        f
        for f in top
        if not (f.endswith(".bin") and has_safetensors)
        and not f.endswith(("pytorch_model.bin.index.json",) if has_safetensors else ())
    ]
    return sorted(chosen)


def is_weight_file(filename: str) -> bool:
    """Whether a file holds weights (large, fetched after the small files are checked)."""
    return filename.endswith(_WEIGHT_SUFFIXES) or filename.lower().endswith(".gguf")


def code_files(filenames: list[str]) -> list[str]:
    """The Python files a repo ships at its top level (its own model code, run only if trusted)."""
    return sorted(f for f in filenames if "/" not in f and f.endswith(".py"))
