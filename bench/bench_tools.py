"""Tool figures: the cost of a call through the tool host (warm) against a call in process, the
host's start and load time, and its restart after a call that killed it.

Run: .venv/bin/python bench/bench_tools.py [--calls 300]
Target (issue 11): under 50 ms per call with a warm host.

Measured 2026-11-29 on the 2-core development machine, load average 9 (busy): start and load of one
file 7.0 s (most of it transformers' first schema); a call through the warm host 0.27 ms median
(p95 2.3 ms) against 0.20 ms for a built-in in process; the first call after the host died 0.34 s.
The built-ins stay in process: they are trusted code and barely faster, but need no host at all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import ToolRegistry, tool
from workbench.messages import ToolCall

TOOL_FILE = '''
import os

from tools import tool


@tool
def echo_file(text: str) -> str:
    """Say the text back.

    Args:
        text: What to say.
    """
    return text


@tool
def end_host() -> str:
    """End the host's process."""
    os._exit(1)
'''


@tool
def echo_here(text: str) -> str:
    """Say the text back.

    Args:
        text: What to say.
    """
    return text


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def timed_calls(registry: ToolRegistry, name: str, calls: int) -> list[float]:
    times = []
    for index in range(calls):
        started = time.perf_counter()
        result = registry.call(ToolCall(name, {"text": f"hello {index}"}))
        times.append(time.perf_counter() - started)
        assert not result.error, result.content
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    print(
        f"Load average at start (other work on this machine): {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bench_tools_file.py").write_text(TOOL_FILE)
        registry = ToolRegistry()
        started = time.perf_counter()
        registry.load_path(folder)
        load = time.perf_counter() - started
        registry.add(echo_here)
        timed_calls(registry, "echo_file", 20)  # warm
        timed_calls(registry, "echo_here", 20)
        hosted = timed_calls(registry, "echo_file", args.calls)
        local = timed_calls(registry, "echo_here", args.calls)
        registry.call(ToolCall("end_host", {}))
        started = time.perf_counter()
        timed_calls(registry, "echo_file", 1)
        restart = time.perf_counter() - started
        registry.close()
    print(f"tool host: start and load one file (schemas)  {load:8.2f} s")
    print(f"call through the warm host, median           {ms(statistics.median(hosted))} (p95 "
          f"{ms(sorted(hosted)[int(len(hosted) * 0.95)]).strip()}, target < 50 ms)")  # fmt: skip
    print(f"call in process (a built-in), median         {ms(statistics.median(local))}")
    print(f"first call after the host died (restart)     {ms(restart)}")
    print(f"Load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
