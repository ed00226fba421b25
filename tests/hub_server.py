"""A Hugging Face Hub on loopback, speaking enough of its protocol for the real ``huggingface_hub`` client.

Routes (as the Hub serves them, headers as ``huggingface_hub.file_download`` and ``hf_api`` read them):

- ``GET /api/models/ORG/REPO`` and ``/api/models/ORG/REPO/revision/REV``: ``id``, ``sha``, ``gated`` and
  ``siblings`` (``rfilename``, ``size``, ``blobId``, ``lfs.sha256``); errors with ``X-Error-Code``
  (``RepoNotFound``, ``RevisionNotFound``, ``GatedRepo``).
- ``HEAD``/``GET /ORG/REPO/resolve/REV/FILE``: small files answered directly (``ETag`` = git blob id,
  ``X-Repo-Commit``, ``Content-Length``); LFS files (GGUF, safetensors) redirected with ``302`` to a
  second loopback address standing for the CDN (``Location``, ``X-Linked-Etag`` = SHA-256,
  ``X-Linked-Size``, ``X-Repo-Commit``), which serves the bytes with ``Range`` support (``206``).

Faults on demand: ``cut`` (the first GET of a file closes the connection halfway), ``corrupt`` (one byte
flipped, hashes unchanged), ``rate`` (bytes per second, so a browser can watch the progress), gated repos
that want ``Authorization: Bearer <token>``. Every request is logged in ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")


@dataclass
class HubFile:
    """A file of a repo: where its bytes are, its size and hashes."""

    path: Path
    size: int
    sha256: str
    git_sha1: str

    @property
    def lfs(self) -> bool:
        return self.path.name.lower().endswith(LFS_SUFFIXES)

    @classmethod
    def of(cls, path: Path) -> HubFile:
        sha256, sha1 = hashlib.sha256(), hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                sha256.update(block)
                sha1.update(block)
        return cls(path, path.stat().st_size, sha256.hexdigest(), sha1.hexdigest())


@dataclass
class HubRepo:
    """A model repo: its commit and files (repo-relative name -> file)."""

    repo_id: str
    files: dict[str, HubFile]
    commit: str = ""
    gated: bool = False

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(self.repo_id.encode()).hexdigest()


@dataclass
class FakeHub:
    """The server's state: repos, faults and the log. Change it between requests from the test."""

    repos: dict[str, HubRepo] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    rate: float | None = None
    token: str = "hf_test_token"
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    url: str = ""
    cdn_url: str = ""

    def add(self, repo_id: str, files: dict[str, Path], gated: bool = False) -> HubRepo:
        repo = HubRepo(repo_id, {name: _hashed(path) for name, path in files.items()}, gated=gated)
        self.repos[repo_id] = repo
        return repo


_HASHED: dict[Path, HubFile] = {}


def _hashed(path: Path) -> HubFile:
    """A file's hashes, computed once per path (the 538 MB converted weights serve several repos)."""
    if path not in _HASHED:
        _HASHED[path] = HubFile.of(path)
    return _HASHED[path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def _route(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path, self.headers.get("Range", "")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            return self._api(parts[2:])
        if parts[0] == "cdn":
            return self._cdn(parts[1:], body)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), body)
        return self._error(404, "RepoNotFound", "not found")

    def _repo(self, repo_id: str, revision: str | None) -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision not in (None, "main", repo.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        return repo

    def _api(self, parts: list[str]) -> None:
        repo_id = "/".join(parts[:2])
        revision = parts[3] if len(parts) >= 4 and parts[2] == "revision" else None
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        siblings = []
        for name, item in sorted(repo.files.items()):
            entry: dict[str, Any] = {"rfilename": name, "size": item.size, "blobId": item.git_sha1}
            if item.lfs:
                entry["lfs"] = {"sha256": item.sha256, "size": item.size, "pointerSize": 134}
            siblings.append(entry)
        data = {
            "_id": repo.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "auto" if repo.gated else False,
            "disabled": False,
            "tags": ["gguf"] if any(n.endswith(".gguf") for n in repo.files) else [],
            "siblings": siblings,
        }
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            return self._error(401, "GatedRepo", "Access to model is restricted")
        item = repo.files.get(filename)
        headers = {"X-Repo-Commit": repo.commit}
        if item is None:
            return self._error(404, "EntryNotFound", "Entry not found", headers)
        if item.lfs:
            headers |= {
                "Location": f"{self.hub.cdn_url}/cdn/{repo_id}/{filename}",
                "X-Linked-Etag": f'"{item.sha256}"',
                "X-Linked-Size": str(item.size),
                "ETag": f'"{item.git_sha1}"',
            }
            return self._send(302, b"", headers)
        headers["ETag"] = f'"{item.git_sha1}"'
        self._file(item, filename, body, headers)

    def _cdn(self, parts: list[str], body: bool) -> None:
        repo = self.hub.repos.get("/".join(parts[:2]))
        filename = "/".join(parts[2:])
        item = repo.files.get(filename) if repo else None
        if item is None:
            return self._send(404, b"NoSuchKey", {})
        self._file(item, filename, body, {"ETag": f'"{item.sha256}"'})

    def _file(self, item: HubFile, filename: str, body: bool, headers: dict[str, str]) -> None:
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start = int(ranged[6:].split("-")[0] or 0)
        status = 206 if start else 200
        headers |= {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{item.size - 1}/{item.size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(item.size - start))
        self.end_headers()
        if not body:
            return
        cut_at = item.size // 2 if (filename in self.hub.cut and not ranged) else None
        if cut_at is not None:
            self.hub.cut.discard(filename)  # only the first try is cut
        try:
            self._stream(item, filename, start, cut_at)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading (Stop): nothing to report

    def _stream(self, item: HubFile, filename: str, start: int, cut_at: int | None) -> None:
        sent, began = start, time.perf_counter()
        with item.path.open("rb") as handle:
            handle.seek(start)
            while block := handle.read(1 << 20):
                if filename in self.hub.corrupt and sent <= item.size // 3 < sent + len(block):
                    at = item.size // 3 - sent
                    block = block[:at] + bytes([block[at] ^ 0xFF]) + block[at + 1 :]
                if cut_at is not None and sent + len(block) > cut_at:
                    self.wfile.write(block[: cut_at - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the client sees the connection drop halfway
                    return
                self.wfile.write(block)
                sent += len(block)
                if self.hub.rate:
                    time.sleep(max(0.0, (sent - start) / self.hub.rate - (time.perf_counter() - began)))

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {}) | {"X-Error-Code": code, "X-Error-Message": message}
        extra["Content-Type"] = "application/json"
        self._send(status, json.dumps({"error": message}).encode(), extra)

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class HubServer:
    """The fake Hub on 127.0.0.1 and its "CDN" on 127.0.0.2 (another host, as the Hub's LFS redirects go)."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        handler = type("Handler", (_Handler,), {"hub": hub})
        self._servers = [ThreadingHTTPServer((host, 0), handler) for host in ("127.0.0.1", "127.0.0.2")]
        for server in self._servers:
            server.daemon_threads = True
        hub.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        hub.cdn_url = f"http://127.0.0.2:{self._servers[1].server_address[1]}"
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self._servers]

    def __enter__(self) -> FakeHub:
        for thread in self._threads:
            thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


GGUF_REPO = "test-org/smollm2-GGUF"
HF_REPO = "test-org/smollm2"
GGUF_FILES = ("smollm2-135m-instruct-Q4_1.gguf", "smollm2-135m-instruct-Q4_K_M.gguf")
#: The converted model's files a Hugging Face repo has (workbench.json is the conversion cache's own).
_HF_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def build_test_hub(scratch: Path) -> FakeHub:
    """The repos the tests use, over the embedded model and small files written in ``scratch``.

    - ``test-org/smollm2-GGUF``: the embedded GGUF under two quantization names (Q4_1, Q4_K_M);
    - ``test-org/smollm2``: the embedded model converted by transformers (a Hugging Face folder);
    - ``test-org/smollm2-base``: the same without a chat template;
    - ``test-org/with-code``: a repo shipping its own ``modeling_*.py``;
    - ``test-org/split-GGUF``: a Q8_0 split in two parts beside a single Q2_K file (small stand-ins);
    - ``test-org/gated-GGUF``: a gated repo (the token is ``hub.token``).
    """
    from workbench.models.loading import _cached_gguf_folder, embedded_gguf_path

    gguf = embedded_gguf_path()
    folder = _cached_gguf_folder(gguf, lambda _msg: None)  # converted once per machine, then cached
    hub = FakeHub()
    hub.add(
        GGUF_REPO,
        {name: gguf for name in GGUF_FILES} | {"README.md": _write(scratch, "README.md", "# test\n")},
    )
    hub.add(HF_REPO, {name: folder / name for name in _HF_FILES if (folder / name).is_file()})
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    base = {name: folder / name for name in ("config.json", "model.safetensors", "tokenizer.json")}
    base["tokenizer_config.json"] = _write(scratch, "base_tokenizer_config.json", json.dumps(config))
    hub.add("test-org/smollm2-base", base)
    hub.add(
        "test-org/with-code",
        {
            "config.json": folder / "config.json",
            "modeling_custom.py": _write(scratch, "modeling_custom.py", "raise SystemExit('never run')\n"),
            "model.safetensors": folder / "model.safetensors",
        },
    )
    parts = {
        f"m-Q8_0-0000{i}-of-00002.gguf": _write(scratch, f"part{i}.gguf", f"GGUF part {i}" * 1000)
        for i in (1, 2)
    }
    hub.add("test-org/split-GGUF", parts | {"m-Q2_K.gguf": _write(scratch, "q2.gguf", "GGUF q2" * 1000)})
    hub.add(
        "test-org/gated-GGUF", {"g-Q4_0.gguf": _write(scratch, "gated.gguf", "GGUF gated" * 1000)}, gated=True
    )
    return hub


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path
