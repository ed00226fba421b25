"""Benchmark models by name (issue 21): download throughput, and what a cached name adds to a load.

    python bench/bench_hub.py [--runs 3] [--loads 5]

- Download: the embedded GGUF (98 MB; ``--copies 5``: five times over in one 492 MB file) served by the loopback Hub of ``tests/hub_server.py``, run in a
  process of its own so the client and the server do not share a GIL. Timed, alternating, ``--runs``
  times each into an empty folder: ``curl`` on the file's URL; ``hf_hub_download`` alone (the library);
  ``workbench.models.hub.pull`` (the file list, the disk check, the download, the SHA-256 check).
  Throughput is MB / median seconds; the ratio is Workbench's against curl's (target: 0.8x or better).
- Load: ``load_backend`` on llama.cpp, by the cached name and by the same file's path, alternating,
  ``--loads`` times each (median), and the name's resolution alone (``resolve_source``, median of 200).
  Target: the name adds 50 ms or less.

Timings on a shared machine vary; compare figures taken in one run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPO = "test-org/smollm2-GGUF"
FILE = "smollm2-135m-instruct-Q4_1.gguf"


def serve(port_file: Path, copies: int) -> None:
    """The loopback Hub serving the embedded GGUF (``copies`` times over, one file), until killed."""
    from tests.hub_server import FakeHub, HubServer
    from workbench.models.loading import embedded_gguf_path

    source = embedded_gguf_path()
    if copies > 1:  # a bigger file, so that the fixed costs (file list, HEAD, client setup) weigh less
        big = port_file.with_name("big.gguf")
        with big.open("wb") as out:
            for _ in range(copies):
                out.write(source.read_bytes())
        source = big
    hub = FakeHub()
    hub.add(REPO, {FILE: source})
    with HubServer(hub) as running:
        port_file.write_text(f"{running.url} {running.cdn_url}")
        while True:
            time.sleep(3600)


def start_server(folder: Path, copies: int) -> tuple[subprocess.Popen[bytes], str, str]:
    port_file = folder / "hub.url"
    command = [sys.executable, __file__, "--serve", str(port_file), "--copies", str(copies)]
    process = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not port_file.is_file() or not port_file.read_text():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("the loopback Hub did not start")
        time.sleep(0.1)
    url, cdn = port_file.read_text().split()
    return process, url, cdn


def time_curl(cdn: str, folder: Path) -> float:
    target = folder / "curl.gguf"
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(target), f"{cdn}/cdn/{REPO}/{FILE}"], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def time_library(folder: Path) -> float:
    from huggingface_hub import hf_hub_download

    shutil.rmtree(folder / "lib", ignore_errors=True)
    started = time.perf_counter()
    hf_hub_download(REPO, FILE, cache_dir=folder / "lib", endpoint=os.environ["HF_ENDPOINT"])
    return time.perf_counter() - started


def time_pull(folder: Path) -> float:
    from workbench.models.hub import pull

    shutil.rmtree(folder / "hf", ignore_errors=True)
    started = time.perf_counter()
    pull(f"{REPO}:Q4_1")
    return time.perf_counter() - started


def loads(runs: int) -> tuple[list[float], list[float], float, float]:
    """(by-name load seconds, by-path load seconds, name resolution ms, path resolution ms)."""
    from workbench.models.backends import load_backend
    from workbench.models.loading import resolve_source
    from workbench.models.spec import ModelSpec

    name = ModelSpec(source=f"{REPO}:Q4_1", backend="llama.cpp", device="cpu")
    path = name.replace(source=str(resolve_source(name)))
    by_name: list[float] = []
    by_path: list[float] = []
    for _ in range(runs):
        for spec, times in ((name, by_name), (path, by_path)):
            started = time.perf_counter()
            backend = load_backend(spec)
            times.append(time.perf_counter() - started)
            del backend
    resolve = {}
    for label, spec in (("name", name), ("path", path)):
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            resolve_source(spec)
            samples.append(time.perf_counter() - started)
        resolve[label] = statistics.median(samples) * 1000
    return by_name, by_path, resolve["name"], resolve["path"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--copies", type=int, default=5, help="the file is the GGUF this many times over")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.copies)
    folder = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    process, url, cdn = start_server(folder, args.copies)
    os.environ.update(HF_ENDPOINT=url, HF_HOME=str(folder / "hf"), WORKBENCH_CACHE_DIR=str(folder / "wb"))
    try:
        import huggingface_hub  # noqa: F401  # imported before timing: its import is no download

        import workbench.models.hub  # noqa: F401
        from workbench.models.loading import embedded_gguf_path

        size = embedded_gguf_path().stat().st_size * args.copies
        curl, library, pulled = [], [], []
        for _ in range(args.runs):
            curl.append(time_curl(cdn, folder))
            library.append(time_library(folder))
            pulled.append(time_pull(folder))
        by_name, by_path, resolve_name, resolve_path = loads(args.loads)
    finally:
        process.kill()
        shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    print(f"# bench_hub {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f}")  # fmt: skip
    print(
        f"file: {size / 1e6:.1f} MB (the embedded GGUF x{args.copies}), loopback, server in its own process"
    )
    for label, times in (("curl", curl), ("hf_hub_download", library), ("workbench pull", pulled)):
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{label:16s} median {median:.2f} s = {size / 1e6 / median:7.1f} MB/s   (runs: {runs} s)")
    print(
        f"ratio workbench pull / curl (throughput): {statistics.median(curl) / statistics.median(pulled):.2f}x"
    )
    print(
        f"ratio hf_hub_download / curl (throughput): {statistics.median(curl) / statistics.median(library):.2f}x"
    )
    name_s, path_s = statistics.median(by_name), statistics.median(by_path)
    print(f"load on llama.cpp, by name {name_s * 1000:.0f} ms, by path {path_s * 1000:.0f} ms (medians of "
          f"{args.loads}): the name adds {(name_s - path_s) * 1000:+.0f} ms")  # fmt: skip
    print(f"resolve_source alone: name {resolve_name:.2f} ms, path {resolve_path:.2f} ms (medians of 200)")


if __name__ == "__main__":
    main()
