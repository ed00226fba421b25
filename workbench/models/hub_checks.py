"""Checks around a download: free disk space before it, the files' hashes and the chat template after.

Each raises an error that says what is wrong and what to do; none touches the network.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from workbench.errors import ChatTemplateError, ModelDownloadError
from workbench.models.hub_cache import hub_cache

#: Free space kept on the cache's disk beyond a download's size (bytes).
DISK_MARGIN = 256 * 1024 * 1024


def mb(nbytes: float) -> str:
    """Bytes as MB or GB for messages."""
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_disk(needed: int) -> None:
    """Refuse a download the cache's disk has no room for (keeping :data:`DISK_MARGIN` free).

    Raises:
        ModelDownloadError: Saying how much is needed and free, and what to do.
    """
    cache = hub_cache()
    free = free_bytes(cache)
    if needed + DISK_MARGIN > free:
        raise ModelDownloadError(
            f"Not enough disk space: the download needs {mb(needed)} and {cache} has {mb(free)} free. Free some "
            "space (`python -m workbench models rm NAME`), or set HF_HOME to a disk with room."
        )


def verify_file(path: Path, sha256: str | None, git_sha1: str | None, label: str) -> None:
    """Compare a new file's hash with the Hub's; delete it and refuse it when they differ."""
    if sha256:
        digest = hashlib.sha256()
        expected = sha256
    elif git_sha1:
        digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
        expected = git_sha1
    else:
        return
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() == expected:
        return
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    raise ModelDownloadError(
        f"{label} failed its checksum (expected {expected[:12]}..., got "
        f"{digest.hexdigest()[:12]}...): the download was corrupted and has been deleted. Start it again; "
        "if it fails again, the server (HF_ENDPOINT) serves a damaged file."
    )


def check_chat_template(folder: Path, repo_id: str) -> None:
    """Refuse a transformers model without a chat template before its weights are downloaded."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return
    try:
        config = (folder / "tokenizer_config.json").read_text()
    except OSError:
        config = ""
    if '"chat_template"' not in config:
        raise ChatTemplateError(
            f"{repo_id} has no chat template (none in tokenizer_config.json, no chat_template.jinja): "
            "it is probably a base model, not a chat model. Choose its instruct or chat version (often "
            "...-Instruct or ...-chat); its weights were not downloaded."
        )
