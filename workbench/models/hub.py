"""Models by name from the Hugging Face Hub: resolve a name to local files, downloading them if needed.

Every byte comes through ``huggingface_hub`` (``HfApi.model_info`` for the file list, ``hf_hub_download``
for the files), so its cache, ``HF_TOKEN`` (gated and private repos), ``HF_ENDPOINT`` (mirrors) and
``HF_HUB_OFFLINE`` apply. A name whose files are cached loads without any network call
(:func:`resolve`); ``models pull`` (:func:`pull`) asks the Hub again and fetches a newer revision.

Before a download: the remote-code check (a repo that ships Python files needs ``trust_remote_code``
before anything is fetched), its size against the free disk, and for a transformers model its chat
template (the small files come first). After it: each new file's SHA-256 (LFS) or git hash against the
Hub's file list; a bad file is deleted and refused.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench.errors import (
    DownloadCancelled,
    ModelDownloadError,
    ModelError,
    ModelLoadError,
    ModelNotFoundError,
)
from workbench.models.hub_cache import cached_model, hub_cache, mark_used, snapshot
from workbench.models.hub_checks import check_chat_template, check_disk, free_bytes, mb, verify_file
from workbench.models.hub_names import (
    HubName,
    choose_gguf,
    choose_projector,
    code_files,
    gguf_quants,
    is_weight_file,
    parse_hub_name,
    transformers_files,
)

ProgressCallback = Callable[[str], None]
_TRUE = ("1", "true", "yes", "on")


class DownloadWatch(Protocol):
    """Follows a download byte by byte (the sidebar's progress bar) and may stop it."""

    def planned(self, total: int, cached: int) -> None:
        """The download's size in bytes, and how much of it is in the cache already."""

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more bytes arrived (negative when a server restarts a file from its start)."""

    def cancelled(self) -> bool:
        """Whether the user asked to stop."""


@dataclass(frozen=True)
class HubFile:
    """One file of a download: its name in the repo, size and the hash the Hub gives for it."""

    name: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str | None  # the others (the git blob id)


@dataclass
class DownloadPlan:
    """What fetching a name means: which files of which commit, how big, how much is cached already."""

    name: HubName
    commit: str
    files: list[HubFile]
    quant: str = ""
    default_quant: bool = False
    quants: list[str] = field(default_factory=list)
    cached: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        """Bytes of every file."""
        return sum(f.size for f in self.files)

    @property
    def missing(self) -> int:
        """Bytes still to download."""
        return sum(f.size for f in self.files if f.name not in self.cached)

    @property
    def canonical(self) -> str:
        """The name with its quantization (``ORG/REPO:Q4_K_M``), or ``ORG/REPO``."""
        return f"{self.name.repo_id}:{self.quant}" if self.quant else self.name.repo_id


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def endpoint() -> str | None:
    """The Hub's address from ``HF_ENDPOINT``, read now (None: huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or "").strip().rstrip("/") or None


def unreachable(name: object) -> ModelNotFoundError:
    """The error for a name that is not cached while the Hub cannot be reached."""
    return ModelNotFoundError(
        f"{name} is not in the cache and the Hub cannot be reached; connect, set HF_ENDPOINT to a mirror, "
        "or give a local path."
    )


def resolve(
    source: str, *, trust_remote_code: bool = False, progress: ProgressCallback | None = None
) -> Path:
    """The local path of a model name: from the cache with no network call, else downloaded.

    Args:
        source: A Hub name (see :mod:`workbench.models.hub_names`).
        trust_remote_code: Whether the model's own Python code may run (checked before downloading).
        progress: Called with a sentence for each step (the download's size, the quantization chosen).

    Raises:
        ModelError: If the name is not cached and cannot be downloaded; the message says what to do.
    """
    name = parse_hub_name(source)
    if name is None:
        raise ModelNotFoundError(f"{source!r} is not a model name (ORG/REPO or ORG/REPO-GGUF:QUANT).")
    say = progress or (lambda _msg: None)
    found = cached_model(name)
    if found is not None:
        path, quant = found
        if name.gguf and not name.quant:
            say(f"{name} names no quantization: using {quant}, the one in the cache.")
        mark_used(f"{name.repo_id}:{quant}" if quant else name.repo_id)
        return path
    if offline():
        raise unreachable(name)
    return pull(source, trust_remote_code=trust_remote_code, progress=say).path


@dataclass(frozen=True)
class PullResult:
    """A finished download: the path to load, the name with its quantization, bytes fetched."""

    path: Path
    name: str
    downloaded: int
    total: int


def plan(name: HubName, *, trust_remote_code: bool = False) -> DownloadPlan:
    """Ask the Hub which files a name stands for, and check them before anything is downloaded.

    Raises:
        ModelError: For an unknown repo, revision or quantization, a gated repo, model code that is not
            trusted, a Hub that cannot be reached, or a disk without room.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if offline():
        raise unreachable(name)
    api = HfApi(endpoint=endpoint())
    try:
        info = api.model_info(name.repo_id, revision=name.revision, files_metadata=True, timeout=_timeout())
    except GatedRepoError as exc:
        raise ModelDownloadError(
            f"{name.repo_id} is gated: accept its terms on its Hub page with your account, then set HF_TOKEN to "
            "a token of that account (or run `hf auth login`) and try again."
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"{name.repo_id} is not a model on the Hub ({endpoint() or 'huggingface.co'}). Check the spelling "
            "(ORG/REPO, as in its URL); if it is private, set HF_TOKEN to a token that can read it; if you meant "
            "a local folder, no such path exists here."
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(
            f"{name.repo_id} has no revision {name.revision!r}; give a branch, tag or commit it has, or none."
        ) from exc
    except (OfflineModeIsEnabled, OSError) as exc:
        if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code < 500:
            raise ModelDownloadError(
                f"The Hub refused to list {name.repo_id}: {exc}".splitlines()[0]
            ) from exc
        raise unreachable(name) from exc
    except Exception as exc:  # httpx2's transport errors (connect, time-out) derive from no OSError
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise unreachable(name) from exc
        raise
    if info.gated and not _token():
        raise ModelDownloadError(
            f"{name.repo_id} is gated: accept its terms on its Hub page with your account, then set HF_TOKEN to "
            "a token of that account (or run `hf auth login`) and try again."
        )
    siblings = {s.rfilename: s for s in info.siblings or []}
    commit = info.sha or name.ref
    result = DownloadPlan(name=name, commit=commit, files=[])
    if name.gguf:
        result.quant, chosen, result.default_quant = choose_gguf(name, list(siblings))
        result.quants = list(gguf_quants(list(siblings)))
        projector = choose_projector(chosen, list(siblings))  # images (issue 26): fetched beside the model
        chosen = [*chosen, projector] if projector else chosen
    else:
        chosen = transformers_files(list(siblings))
        if not any(f.endswith((".safetensors", ".bin")) for f in chosen):
            raise ModelNotFoundError(
                f"{name.repo_id} has no transformers weights (*.safetensors or *.bin) at its top level. "
                "If it is a repo of GGUF files, add ':QUANT' to the name (e.g. "
                f"{name.with_quant('Q4_K_M')}) to run one with llama.cpp."
            )
        code = code_files(chosen)
        if code and not trust_remote_code:
            raise ModelLoadError(
                f"{name.repo_id} ships its own Python code ({', '.join(code[:3])}) and runs only if you trust "
                "it: pass --trust-remote-code on the CLI or tick 'Trust remote code' in the sidebar. Nothing "
                "was downloaded."
            )
    for filename in chosen:
        sibling = siblings[filename]
        lfs = sibling.lfs
        sha256 = (
            (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
        )
        result.files.append(
            HubFile(filename, int(sibling.size or 0), sha256, None if sha256 else sibling.blob_id)
        )
    repo = hub_cache() / ("models--" + name.repo_id.replace("/", "--"))
    result.cached = {
        f.name
        for f in result.files
        if (repo / "snapshots" / commit / f.name).is_file()
        or (f.sha256 and (repo / "blobs" / f.sha256).is_file())
    }
    check_disk(result.missing)
    return result


def _token() -> str | None:
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def _timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)
    except ValueError:
        return 10.0


def pull(
    source: str,
    *,
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    watch: DownloadWatch | None = None,
) -> PullResult:
    """Download a model by name into the Hugging Face cache (what is cached already is not fetched again).

    Args:
        source: A Hub name.
        trust_remote_code: Whether the model's own Python code may run; a repo with code is refused
            before anything is downloaded without it.
        progress: Called with a sentence per step (size, quantization chosen, files verified).
        watch: Follows the bytes and may stop the download; None shows the library's progress bars
            (tqdm, on standard error).

    Raises:
        ModelError: Unknown name or quantization, gated, no network, checksum, full disk, no chat template.
        DownloadCancelled: If ``watch`` asked to stop (files completed so far stay cached).
    """
    name = parse_hub_name(source)
    if name is None:
        raise ModelNotFoundError(f"{source!r} is not a model name (ORG/REPO or ORG/REPO-GGUF:QUANT).")
    say = progress or (lambda _msg: None)
    todo = plan(name, trust_remote_code=trust_remote_code)
    if todo.default_quant:
        say(f"{name} names no quantization: using {todo.quant} (the repo has {', '.join(todo.quants)}).")
    say(
        f"{todo.canonical}: {len(todo.files)} file(s), {mb(todo.total)}, {mb(todo.missing)} to download "
        f"into {hub_cache()} ({mb(free_bytes(hub_cache()))} free)."
    )
    if watch is not None:
        watch.planned(todo.total, todo.total - todo.missing)
    small = [f for f in todo.files if not is_weight_file(f.name)]
    for item in small:
        _fetch(todo, item, watch)
    folder = snapshot(HubName(name.repo_id, todo.commit))
    if not name.gguf and folder is not None:
        check_chat_template(folder, name.repo_id)
    for item in todo.files:
        if is_weight_file(item.name):
            _fetch(todo, item, watch)
    folder = snapshot(HubName(name.repo_id, todo.commit))
    if folder is None:
        raise ModelDownloadError(f"The download of {name} left no snapshot in {hub_cache()}; run it again.")
    path = folder / todo.files[0].name if name.gguf else folder
    mark_used(todo.canonical)
    say(f"{todo.canonical} is in the cache: {path}")
    return PullResult(path, todo.canonical, todo.missing, todo.total)


def _fetch(todo: DownloadPlan, item: HubFile, watch: DownloadWatch | None) -> None:
    """Download one file through ``hf_hub_download`` and verify it if it was not cached before."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    was_cached = item.name in todo.cached
    try:
        local = hf_hub_download(
            todo.name.repo_id,
            item.name,
            revision=todo.name.ref,
            cache_dir=hub_cache(),
            endpoint=endpoint(),
            tqdm_class=None if watch is None else _counter_class(watch),
        )
    except ModelError:
        raise
    except GatedRepoError as exc:
        raise ModelDownloadError(
            f"{todo.name.repo_id} is gated and the Hub refused the token: accept its terms on its Hub page with "
            "your account, then set HF_TOKEN to a token of that account and try again."
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelDownloadError(
                f"The disk filled up while downloading {item.name} into {hub_cache()}. Free some space or set "
                "HF_HOME to a disk with room, then start the download again."
            ) from exc
        raise _download_failed(todo, item, exc) from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("httpx", "httpcore", "huggingface_hub")):
            raise _download_failed(todo, item, exc) from exc
        raise
    if not was_cached:
        verify_file(Path(local), item.sha256, item.git_sha1, f"{item.name} of {todo.name.repo_id}")


def _download_failed(todo: DownloadPlan, item: HubFile, exc: BaseException) -> ModelDownloadError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelDownloadError(
        f"Downloading {item.name} of {todo.name.repo_id} failed: {first[:300]}. Start it again: the files "
        "completed so far are kept."
    )


def _counter_class(watch: DownloadWatch) -> type[Any]:
    """A tqdm class that reports bytes to ``watch`` and prints nothing; it stops the download on request."""
    from tqdm import tqdm

    class _Counter(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            watch.advanced(int(n or 0))
            if watch.cancelled():  # huggingface_hub deletes the file's partial download on the way out
                raise DownloadCancelled("The download was stopped; start it again to fetch what is missing.")
            return super().update(n)

    return _Counter
