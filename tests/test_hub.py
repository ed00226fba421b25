"""Models by name through the real ``huggingface_hub`` client, against the loopback Hub of tests/hub_server.py.

Every test gets an empty ``HF_HOME`` and ``HF_ENDPOINT`` pointing at the loopback server (the ``hub``
fixture); nothing is mocked but the free disk space of one test.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli, run_main
from tests.hub_server import GGUF_REPO, HF_REPO
from tests.server.helpers import http_json, serve_process
from workbench import load_model
from workbench.errors import (
    ChatTemplateError,
    DownloadCancelled,
    ModelDownloadError,
    ModelLoadError,
    ModelNotFoundError,
)
from workbench.models import hub_checks
from workbench.models.generation import SamplingSettings
from workbench.models.hub import pull, resolve
from workbench.models.hub_cache import cached_model, hub_cache, list_cached
from workbench.models.hub_names import parse_hub_name
from workbench.models.loading import embedded_gguf_path

OFFLINE = (
    "test-org/smollm2-GGUF:Q4_1 is not in the cache and the Hub cannot be reached; connect, set HF_ENDPOINT "
    "to a mirror, or give a local path."
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gets(hub, suffix: str) -> list[tuple[str, str, str]]:
    """The GET requests of the file (on the Hub or its CDN) whose path ends with ``suffix``."""
    return [r for r in hub.requests if r[0] == "GET" and r[1].endswith(suffix)]


def resolves(hub) -> list[tuple[str, str, str]]:
    """Every request for a file (metadata or bytes), not the API's file list."""
    return [r for r in hub.requests if "/resolve/" in r[1] or r[1].startswith("/cdn/")]


def cached(source: str) -> tuple[Path, str] | None:
    name = parse_hub_name(source)
    assert name is not None
    return cached_model(name)


def dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed when we return: connection refused


def test_pull_without_quant_picks_q4_k_m_says_so_and_caches(hub):
    said: list[str] = []
    result = pull(GGUF_REPO, progress=said.append)
    assert said[0] == "test-org/smollm2-GGUF names no quantization: using Q4_K_M (the repo has Q4_1, Q4_K_M)."
    assert said[1].startswith("test-org/smollm2-GGUF:Q4_K_M: 1 file(s), 98.4 MB, 98.4 MB to download into ")
    assert result.name == "test-org/smollm2-GGUF:Q4_K_M" and result.downloaded == result.total
    assert result.path.name == "smollm2-135m-instruct-Q4_K_M.gguf"
    assert result.path.is_relative_to(hub_cache()) and str(hub_cache()).startswith(str(Path.cwd().anchor))
    assert sha256(result.path) == sha256(embedded_gguf_path())
    assert len(gets(hub, "Q4_K_M.gguf")) == 1
    hub.requests.clear()
    again = pull(GGUF_REPO)
    assert again.downloaded == 0 and again.path == result.path
    assert gets(hub, ".gguf") == []


def test_quant_is_matched_whatever_its_case_and_a_shared_blob_is_not_fetched_twice(hub):
    pull(f"{GGUF_REPO}:Q4_K_M")
    hub.requests.clear()
    said: list[str] = []
    result = pull(f"hf.co/{GGUF_REPO}:q4_1", progress=said.append)
    assert result.path.name == "smollm2-135m-instruct-Q4_1.gguf"
    assert "0.0 MB to download" in said[0], "same bytes as Q4_K_M: the blob in the cache serves both"
    assert gets(hub, ".gguf") == []


def test_unknown_quant_lists_the_repo_quants_before_any_download(hub):
    with pytest.raises(ModelNotFoundError) as info:
        pull(f"{GGUF_REPO}:Q5_K_S")
    assert str(info.value) == (
        "test-org/smollm2-GGUF has no Q5_K_S quantization; it has: Q4_1, Q4_K_M. Use one of them, "
        "e.g. test-org/smollm2-GGUF:Q4_1."
    )
    assert resolves(hub) == []


def test_split_gguf_is_fetched_whole_and_loads_from_its_first_part(hub):
    result = pull("test-org/split-GGUF:Q8_0")
    assert result.path.name == "m-Q8_0-00001-of-00002.gguf"
    assert sorted(p.name for p in result.path.parent.iterdir()) == [
        "m-Q8_0-00001-of-00002.gguf",
        "m-Q8_0-00002-of-00002.gguf",
    ]
    assert gets(hub, "m-Q2_K.gguf") == []


def test_unknown_repo_and_revision_say_what_to_check(hub):
    with pytest.raises(ModelNotFoundError) as info:
        pull("test-org/no-such-model")
    assert str(info.value) == (
        f"test-org/no-such-model is not a model on the Hub ({hub.url}). Check the spelling (ORG/REPO, as in its "
        "URL); if it is private, set HF_TOKEN to a token that can read it; if you meant a local folder, no such "
        "path exists here."
    )
    with pytest.raises(
        ModelNotFoundError, match=r"has no revision 'v9'; give a branch, tag or commit it has"
    ):
        pull(f"{GGUF_REPO}@v9:Q4_1")


def test_gated_repo_asks_for_hf_token_before_downloading_and_works_with_it(hub, monkeypatch):
    with pytest.raises(ModelDownloadError) as info:
        pull("test-org/gated-GGUF:Q4_0")
    assert "is gated: accept its terms on its Hub page with your account, then set HF_TOKEN" in str(
        info.value
    )
    assert resolves(hub) == []
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(ModelDownloadError, match="is gated and the Hub refused the token"):
        pull("test-org/gated-GGUF:Q4_0")
    monkeypatch.setenv("HF_TOKEN", hub.token)
    assert pull("test-org/gated-GGUF:Q4_0").path.name == "g-Q4_0.gguf"


def test_model_code_needs_trust_before_anything_is_downloaded(hub):
    with pytest.raises(ModelLoadError) as info:
        pull("test-org/with-code")
    assert str(info.value) == (
        "test-org/with-code ships its own Python code (modeling_custom.py) and runs only if you trust it: pass "
        "--trust-remote-code on the CLI or tick 'Trust remote code' in the sidebar. Nothing was downloaded."
    )
    assert resolves(hub) == []


def test_a_repo_without_chat_template_is_refused_before_its_weights(hub):
    with pytest.raises(
        ChatTemplateError, match=r"test-org/smollm2-base has no chat template .* Choose its instruct"
    ):
        pull("test-org/smollm2-base")
    assert gets(hub, "model.safetensors") == [], "the weights are never fetched"


def test_full_disk_is_refused_before_downloading(hub, monkeypatch):
    monkeypatch.setattr(hub_checks, "free_bytes", lambda _folder: 50_000_000)  # the one fake: a full disk
    with pytest.raises(ModelDownloadError) as info:
        pull(f"{GGUF_REPO}:Q4_1")
    assert str(info.value) == (
        f"Not enough disk space: the download needs 98.4 MB and {hub_cache()} has 50.0 MB free. Free some space "
        "(`python -m workbench models rm NAME`), or set HF_HOME to a disk with room."
    )
    assert resolves(hub) == []


def test_a_download_cut_halfway_resumes_from_where_it_stopped(hub):
    hub.cut.add("smollm2-135m-instruct-Q4_1.gguf")
    result = pull(f"{GGUF_REPO}:Q4_1")
    tries = gets(hub, "Q4_1.gguf")
    assert len(tries) == 2
    assert tries[0][2] == "" and tries[1][2].startswith("bytes=")
    resumed_at = int(tries[1][2].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= result.total // 2, "the second request asks only for the rest"
    assert sha256(result.path) == sha256(embedded_gguf_path())


def test_a_corrupted_download_is_deleted_and_refused(hub):
    hub.corrupt.add("smollm2-135m-instruct-Q4_1.gguf")
    with pytest.raises(ModelDownloadError) as info:
        pull(f"{GGUF_REPO}:Q4_1")
    assert "smollm2-135m-instruct-Q4_1.gguf of test-org/smollm2-GGUF failed its checksum" in str(info.value)
    assert "has been deleted. Start it again" in str(info.value)
    assert cached(f"{GGUF_REPO}:Q4_1") is None
    assert not list((hub_cache() / "models--test-org--smollm2-GGUF" / "blobs").glob("*"))
    hub.corrupt.clear()
    assert sha256(pull(f"{GGUF_REPO}:Q4_1").path) == sha256(embedded_gguf_path())


class StopAfter:
    """A watch that stops the download after ``limit`` bytes, as the sidebar's Stop does."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.total = limit, 0, 0

    def planned(self, total: int, cached: int) -> None:
        self.total = total

    def advanced(self, nbytes: int) -> None:
        self.seen += nbytes

    def cancelled(self) -> bool:
        return self.seen >= self.limit


def test_stop_cancels_and_a_second_start_fetches_only_what_is_missing(hub):
    first = "m-Q8_0-00001-of-00002.gguf"
    size = hub.repos["test-org/split-GGUF"].files[first].size
    watch = StopAfter(size + 1)  # during the second part
    with pytest.raises(DownloadCancelled):
        pull("test-org/split-GGUF:Q8_0", watch=watch)
    assert cached("test-org/split-GGUF:Q8_0") is None
    assert len(gets(hub, first)) == 1
    hub.requests.clear()
    result = pull("test-org/split-GGUF:Q8_0", watch=StopAfter(10**9))
    assert result.downloaded < result.total
    assert gets(hub, first) == [], "the completed part is not fetched again"
    assert len(gets(hub, "m-Q8_0-00002-of-00002.gguf")) == 1


def test_a_cached_name_loads_without_network(hub, monkeypatch):
    pulled = pull(f"{GGUF_REPO}:Q4_1").path
    monkeypatch.setenv("HF_ENDPOINT", dead_endpoint())
    assert resolve(f"{GGUF_REPO}:Q4_1") == pulled
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    said: list[str] = []
    assert resolve(GGUF_REPO, progress=said.append) == pulled
    assert said == ["test-org/smollm2-GGUF names no quantization: using Q4_1, the one in the cache."]


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "dead endpoint"])
def test_an_uncached_name_without_network_fails_fast_with_the_message(hub, monkeypatch, how):
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", dead_endpoint())
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        resolve(f"{GGUF_REPO}:Q4_1")
    assert str(info.value) == OFFLINE
    assert time.perf_counter() - started < 10, "never a hang (generous bound)"


def test_the_cli_offline_prints_the_message_and_no_traceback(hub, tmp_path):
    result = run_cli("ask", "--model", f"{GGUF_REPO}:Q4_1", "hello", timeout=120, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {OFFLINE}"


def test_models_pull_shows_the_library_progress_bar(hub):
    result = run_cli("models", "pull", f"{GGUF_REPO}:Q4_1", timeout=120, env={"TQDM_POSITION": "-1"})
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).name == "smollm2-135m-instruct-Q4_1.gguf"
    assert "98.4M/98.4M" in result.stderr, "tqdm's byte counter from huggingface_hub"
    assert "test-org/smollm2-GGUF:Q4_1: 1 file(s), 98.4 MB" in result.stderr


def test_models_list_and_rm(hub):
    assert run_main("models", "list")[0] == 0
    pull(f"{GGUF_REPO}:Q4_K_M")
    pull(f"{GGUF_REPO}:Q4_1")
    pull("test-org/split-GGUF:Q8_0")
    status, out, _ = run_main("models", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "QUANT", "SIZE", "LAST", "USED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == [
        "test-org/smollm2-GGUF:Q4_1",
        "test-org/smollm2-GGUF:Q4_K_M",
        "test-org/split-GGUF:Q8_0",
    ]
    assert rows["test-org/smollm2-GGUF:Q4_1"][1:5] == ["gguf", "Q4_1", "98.4", "MB"]
    assert rows["test-org/smollm2-GGUF:Q4_1"][5] != "-", "last use recorded"
    assert run_main("models", "rm", f"{GGUF_REPO}:Q4_1") == (
        0,
        "Removed test-org/smollm2-GGUF:Q4_1 (98.4 MB).\n",
        "",
    )
    assert [m.name for m in list_cached()] == ["test-org/smollm2-GGUF:Q4_K_M", "test-org/split-GGUF:Q8_0"]
    kept = cached(f"{GGUF_REPO}:Q4_K_M")
    assert kept is not None and sha256(kept[0]) == sha256(embedded_gguf_path()), "the shared blob stays"
    assert run_main("models", "rm", f"{GGUF_REPO}:Q4_K_M")[0] == 0
    assert not (hub_cache() / "models--test-org--smollm2-GGUF").exists(), "an emptied repo goes"
    status, _, err = run_main("models", "rm", f"{GGUF_REPO}:Q4_K_M")
    assert status == 1 and "does not name one cached model" in err


@pytest.mark.model
def test_a_gguf_name_loads_and_answers_on_llama_cpp(hub):
    pytest.importorskip("llama_cpp")
    said: list[str] = []
    bot = load_model(f"{GGUF_REPO}:Q4_1", backend="llama.cpp", device="cpu", progress=said.append)
    assert bot.info.backend == "llama.cpp"
    assert Path(bot.info.loaded_from).is_relative_to(hub_cache())
    assert any("to download into" in line for line in said)
    reply, history = bot.chat("Hello", settings=SamplingSettings(temperature=0.0, max_new_tokens=4))
    assert isinstance(reply, str) and history[-1].content == reply


@pytest.mark.model
def test_a_hugging_face_name_loads_and_answers_on_transformers(hub):
    bot = load_model(HF_REPO, device="cpu")
    assert bot.info.backend == "transformers", "auto picks transformers for a folder name"
    assert Path(bot.info.loaded_from).is_relative_to(hub_cache())
    reply, history = bot.chat("Hello", settings=SamplingSettings(temperature=0.0, max_new_tokens=4))
    assert isinstance(reply, str) and history[-1].content == reply
    assert [m.name for m in list_cached()] == [HF_REPO]


def test_workbench_model_and_load_model_take_a_name(hub, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL", f"{GGUF_REPO}:Q4_1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        load_model(device="cpu")
    assert str(info.value) == OFFLINE


@pytest.mark.model
def test_ask_with_a_name_downloads_it_says_its_size_and_answers(hub):
    result = run_cli(
        "ask", "--json", "--temperature", "0", "--max-new-tokens", "4", "--model", f"{GGUF_REPO}:Q4_1", "Hello",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[workbench] test-org/smollm2-GGUF:Q4_1: 1 file(s), 98.4 MB, 98.4 MB to download" in result.stderr
    messages = json.loads(result.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]


@pytest.mark.model
def test_serve_with_a_name(hub, tmp_path):
    with serve_process(tmp_path / "serve.log", "--model", f"{GGUF_REPO}:Q4_1", "--device", "cpu") as (api, _):
        status, listing = http_json("GET", f"{api}/models")
        assert status == 200
        model_id = listing["data"][0]["id"]
        body = {"model": model_id, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2}
        status, answer = http_json("POST", f"{api}/chat/completions", body)
        assert status == 200 and answer["choices"][0]["message"]["role"] == "assistant"
    assert cached(f"{GGUF_REPO}:Q4_1") is not None
