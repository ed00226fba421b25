"""What the Hugging Face cache holds: find a name's files, list cached models, remove one.

Read straight from the cache's documented layout (``models--ORG--REPO/refs``, ``snapshots``,
``blobs``), without importing ``huggingface_hub``: finding a cached name costs a few ``stat`` calls,
so loading a model by its name adds no measurable time over loading its path. The cache is the one
``huggingface_hub`` uses: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``,
read at each call (so a running app follows the environment it was started with, and tests can point it
at a folder of their own).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ModelNotFoundError
from workbench.models.hub_names import (
    HubName,
    choose_gguf,
    gguf_quants,
    is_weight_file,
    parse_hub_name,
    split_complete,
)

_COMMIT = re.compile(r"[0-9a-f]{40}")


def hub_cache() -> Path:
    """The Hugging Face cache folder (``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def repo_folder(repo_id: str) -> Path:
    """The cache folder of a model repo (``models--ORG--REPO``)."""
    return hub_cache() / ("models--" + repo_id.replace("/", "--"))


def snapshot(name: HubName) -> Path | None:
    """The cached snapshot folder of a name's revision, or None if that revision was never fetched."""
    folder = repo_folder(name.repo_id)
    commit = name.revision if name.revision and _COMMIT.fullmatch(name.revision) else None
    if commit is None:
        ref = folder / "refs" / name.ref
        try:
            commit = ref.read_text().strip()
        except OSError:
            return None
    path = folder / "snapshots" / commit
    return path if path.is_dir() else None


def snapshot_files(folder: Path) -> list[str]:
    """The files of a snapshot, as repo-relative names (``a/b.gguf``), complete ones only."""
    return sorted(
        str(path.relative_to(folder)).replace(os.sep, "/")
        for path in folder.rglob("*")
        if path.is_file()  # follows the link: a link to a missing blob is no file
    )


def model_path(folder: Path, name: HubName, files: list[str]) -> tuple[Path, str] | None:
    """The path to load for a name among a snapshot's files, with its quantization ('' for transformers).

    A GGUF name gives its (first) file, a transformers name the snapshot folder; None if the files are
    not all there (a split GGUF without all its parts, a folder without its config or weight shards).
    """
    if name.gguf:
        try:
            quant, chosen, _ = choose_gguf(name, files)
        except ModelNotFoundError:
            return None
        return (folder / chosen[0], quant) if split_complete(chosen) else None
    if "config.json" not in files or not any(
        is_weight_file(f) and "/" not in f and not f.endswith(".gguf") for f in files
    ):
        return None
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if index in files:
            try:
                shards = set(json.loads((folder / index).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return None
            if not shards <= set(files):
                return None
    return folder, ""


def cached_model(name: HubName) -> tuple[Path, str] | None:
    """Where a name's model is in the cache (path and quantization), or None if it is not all there."""
    folder = snapshot(name)
    if folder is None:
        return None
    return model_path(folder, name, snapshot_files(folder))


def _use_marker(canonical: str) -> Path:
    """A file whose time is the last use of a model, in Workbench's cache (``WORKBENCH_CACHE_DIR``)."""
    key = hashlib.sha256(f"{hub_cache()}|{canonical}".encode()).hexdigest()[:24]
    root = os.environ.get("WORKBENCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workbench"
    )  # as loading.cache_dir(), which imports this module's users: no cycle
    return Path(root) / "hub-last-use" / key


def mark_used(canonical: str) -> None:
    """Record that a model was used now (``models list`` shows it); never fails a load."""
    marker = _use_marker(canonical)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass


def last_used(canonical: str) -> float | None:
    """When a model was last loaded or pulled by Workbench (a time stamp), or None."""
    try:
        return _use_marker(canonical).stat().st_mtime
    except OSError:
        return None


@dataclass(frozen=True)
class CachedModel:
    """A model in the cache.

    Attributes:
        name: The name that loads it (``ORG/REPO`` or ``ORG/REPO:QUANT``).
        kind: ``gguf`` (llama.cpp) or ``transformers``.
        quant: The quantization of a GGUF model, '' for transformers.
        size: Bytes on disk.
        files: Its files in the snapshot, repo-relative.
        path: The path it loads from.
        commit: The snapshot's commit.
        last_used: When Workbench last loaded or pulled it (a time stamp), or None.
    """

    name: str
    kind: str
    quant: str
    size: int
    files: tuple[str, ...]
    path: Path
    commit: str
    last_used: float | None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``models list --json``)."""
        used = (
            None
            if self.last_used is None
            else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.last_used))
        )
        return {
            "name": self.name,
            "kind": self.kind,
            "quant": self.quant,
            "size": self.size,
            "files": list(self.files),
            "path": str(self.path),
            "commit": self.commit,
            "last_used": used,
        }


def _size(folder: Path, files: list[str]) -> int:
    return sum((folder / f).stat().st_size for f in files)


def list_cached() -> list[CachedModel]:
    """Every model in the cache, one per GGUF quantization or transformers snapshot, newest snapshot first.

    Also lists models that other tools (transformers, ``hf download``) put in the same cache.
    """
    found: dict[str, CachedModel] = {}
    root = hub_cache()
    repos = sorted(root.glob("models--*")) if root.is_dir() else []
    for repo in repos:
        repo_id = repo.name.removeprefix("models--").replace("--", "/", 1)
        snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
        for folder in snapshots:
            files = snapshot_files(folder)
            for quant, quant_files in gguf_quants(files).items():
                canonical = f"{repo_id}:{quant}"
                if canonical not in found and split_complete(quant_files):
                    found[canonical] = CachedModel(
                        canonical, "gguf", quant, _size(folder, quant_files), tuple(quant_files),
                        folder / quant_files[0], folder.name, last_used(canonical),
                    )  # fmt: skip
            located = model_path(folder, HubName(repo_id), files)
            if located is not None and repo_id not in found:
                mine = [f for f in files if not f.lower().endswith(".gguf")]
                found[repo_id] = CachedModel(
                    repo_id, "transformers", "", _size(folder, mine), tuple(mine), folder, folder.name,
                    last_used(repo_id),
                )  # fmt: skip
    return sorted(found.values(), key=lambda m: m.name.lower())


def find_cached(source: str) -> CachedModel:
    """The cached model a name stands for (``ORG/REPO-GGUF`` alone matches its one cached quantization).

    Raises:
        ModelNotFoundError: If the name is not a Hub name or nothing of it is cached.
    """
    name = parse_hub_name(source)
    if name is None:
        raise ModelNotFoundError(f"{source!r} is not a model name (ORG/REPO or ORG/REPO-GGUF:QUANT).")
    models = [m for m in list_cached() if m.name.partition(":")[0] == name.repo_id]
    if name.gguf:
        models = [m for m in models if m.kind == "gguf" and (not name.quant or m.quant == name.quant.upper())]
    else:
        models = [m for m in models if m.kind == "transformers"]
    if len(models) != 1:
        listed = ", ".join(m.name for m in models) if models else "nothing of it"
        raise ModelNotFoundError(
            f"{source} does not name one cached model (the cache holds {listed}). "
            "`python -m workbench models list` shows the cached models by name."
        )
    return models[0]


def remove_cached(source: str) -> CachedModel:
    """Delete a cached model's files (blobs that no other file of the repo uses), and its repo if emptied.

    Returns:
        What was removed.

    Raises:
        ModelNotFoundError: If the name is not cached (see :func:`find_cached`).
    """
    model = find_cached(source)
    repo = model.path.parent if model.kind == "gguf" else model.path
    repo = repo.parent.parent  # snapshots/<commit>/.. -> the repo folder
    for folder in (repo / "snapshots").glob("*"):
        for name in model.files:
            link = folder / name
            blob = link.resolve() if link.is_symlink() else None
            link.unlink(missing_ok=True)
            if blob is not None and not _blob_used(repo, blob):
                blob.unlink(missing_ok=True)
        _prune_empty(folder)
    if not any(p.is_file() for p in (repo / "snapshots").rglob("*")):
        shutil.rmtree(repo, ignore_errors=True)
    _use_marker(model.name).unlink(missing_ok=True)
    return model


def _blob_used(repo: Path, blob: Path) -> bool:
    return any(p.is_symlink() and p.resolve() == blob for p in (repo / "snapshots").rglob("*"))


def _prune_empty(folder: Path) -> None:
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
