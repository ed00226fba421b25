"""Kernel figures: start time, first run in a new session with and without the warm spare, and
the overhead of KernelSession.execute("1") over raw jupyter_client on the same kernel.

With ``--gateway``: a Jupyter Kernel Gateway on loopback with a token (started as the tests start it,
from a cached venv), kernel start through it, and its ``execute("1")`` round trip against a local
sandboxed kernel's, the two called in turn (target: at most 3x local). ``--gateway-only`` skips the rest.

Run: .venv/bin/python bench/bench_kernel.py [--runs 200] [--starts 5] [--gateway | --gateway-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_client import BlockingKernelClient

from kernel import KernelPool, KernelSession, sandbox_available


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def start_times(starts: int, sandbox: bool) -> list[float]:
    times = []
    for _ in range(starts):
        started = time.perf_counter()
        session = KernelSession(sandbox=sandbox)
        times.append(time.perf_counter() - started)
        session.shutdown()
    return times


def first_run(warm_spare: bool) -> float:
    pool = KernelPool(max_kernels=2, warm_spare=warm_spare)
    try:
        time.sleep(3.0 if warm_spare else 0.0)  # a browser session arrives after the app has started
        started = time.perf_counter()
        execution = pool.get("new-session").execute("1")
        elapsed = time.perf_counter() - started
        assert execution.result == "1", execution.for_model()
        return elapsed
    finally:
        pool.shutdown_all()


def overhead(runs: int) -> tuple[list[float], list[float]]:
    with KernelSession() as session:
        raw = BlockingKernelClient(connection_file=str(session.connection_file))
        raw.load_connection_file()
        raw.start_channels()
        raw.wait_for_ready(timeout=30)
        ours, theirs = [], []
        for _ in range(20):  # warm up both paths
            session.execute("1")
            raw.execute_interactive("1", timeout=10, output_hook=lambda msg: None)
        for _ in range(runs):
            started = time.perf_counter()
            session.execute("1")
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw.execute_interactive("1", timeout=10, output_hook=lambda msg: None)
            theirs.append(time.perf_counter() - started)
        raw.stop_channels()
        return ours, theirs


def gateway_figures(runs: int, starts: int) -> None:
    """Kernel start through a Kernel Gateway, and execute("1") there against a local kernel, in turn."""
    import tempfile

    from kernel import GatewaySession
    from tests.kernel.kernel_gateway import run_kernel_gateway

    with tempfile.TemporaryDirectory() as folder, run_kernel_gateway(Path(folder)) as gateway:
        times = []
        for _ in range(starts):
            started = time.perf_counter()
            session = GatewaySession(gateway.config)
            times.append(time.perf_counter() - started)
            session.shutdown()
        median = statistics.median(times)
        print(f"kernel start, on the gateway    median {ms(median)}  (min {ms(min(times))}, n={starts})")
        with KernelSession() as local, GatewaySession(gateway.config) as remote:
            here, there = [], []
            for _ in range(20):
                local.execute("1")
                remote.execute("1")
            for _ in range(runs):
                started = time.perf_counter()
                local.execute("1")
                here.append(time.perf_counter() - started)
                started = time.perf_counter()
                remote.execute("1")
                there.append(time.perf_counter() - started)
    local_median, gateway_median = statistics.median(here), statistics.median(there)
    print(
        f"execute('1') local kernel              median {ms(local_median)}  (p90 {ms(statistics.quantiles(here, n=10)[-1])})"
    )
    print(
        f"execute('1') through the gateway       median {ms(gateway_median)}  (p90 {ms(statistics.quantiles(there, n=10)[-1])})"
    )
    print(
        f"gateway / local                        {gateway_median / local_median:8.2f}x  (target <= 3x, n={runs})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="execute('1') calls per path")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts to time")
    parser.add_argument("--gateway", action="store_true", help="add the Kernel Gateway figures")
    parser.add_argument("--gateway-only", action="store_true", help="only the Kernel Gateway figures")
    args = parser.parse_args()
    if args.gateway_only:
        gateway_figures(args.runs, args.starts)
        return
    available, text = sandbox_available()
    print(f"sandbox: {text if available else 'NOT sandboxed: ' + text}")
    for sandbox in (True, False) if available else (False,):
        times = start_times(args.starts, sandbox)
        label = "sandboxed" if sandbox else "NOT sandboxed"
        print(
            f"kernel start, {label:13}   median {ms(statistics.median(times))}  (min {ms(min(times))}, n={args.starts})"
        )
    print(f"first run, new session, warm spare     {ms(first_run(warm_spare=True))}")
    print(f"first run, new session, no spare       {ms(first_run(warm_spare=False))}")
    ours, theirs = overhead(args.runs)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(
        f"execute('1') KernelSession.execute      median {ms(ours_median)}  (p90 {ms(statistics.quantiles(ours, n=10)[-1])})"
    )
    print(
        f"execute('1') raw execute_interactive    median {ms(theirs_median)}  (p90 {ms(statistics.quantiles(theirs, n=10)[-1])})"
    )
    print(
        f"overhead of KernelSession.execute       median {ms(ours_median - theirs_median)}  (n={args.runs})"
    )
    if args.gateway:
        gateway_figures(args.runs, args.starts)


if __name__ == "__main__":
    main()
