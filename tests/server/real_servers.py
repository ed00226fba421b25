"""Real OpenAI-compatible servers for the remote backend's tests, started as their users start them.

- llama-cpp-python's own server (``python -m llama_cpp.server``) on the embedded GGUF file, run from a
  test virtual environment made here: the project's llama-cpp-python (a ``.pth`` file adds the project
  venv's site-packages) plus ``fastapi``, ``pydantic-settings`` and ``starlette-context`` installed into
  it with pip. The environment is cached between runs under a folder named by the hash of that
  requirement set (``$WORKBENCH_CACHE_DIR`` or ``~/.cache/workbench``, then ``test-venvs/``).
- The workbench's own server behind :mod:`tests.server.imitating_server`, playing the deviations of
  other servers (``tool_choice`` ignored, ``json_schema`` and null content refused).

Each runs in its own process on a free loopback port, so a test can kill it with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.streamlit_server import free_port
from tests.server.helpers import server_process

#: What llama-cpp-python's server needs beyond llama_cpp itself (its ``[server]`` extra, less what the
#: project already has: uvicorn, sse-starlette, anyio).
LLAMA_SERVER_REQUIREMENTS = ("fastapi", "pydantic-settings", "starlette-context")


def cache_dir() -> Path:
    """Where test environments are kept between runs."""
    base = os.environ.get("WORKBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "workbench")
    return Path(base) / "test-venvs"


def llama_server_python() -> Path:
    """The Python of the cached test venv that runs ``llama_cpp.server`` (made on first use).

    Skips the test (with the reason) when llama-cpp-python is not installed in the project's venv or
    the environment cannot be made (no package index reachable).
    """
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python is not installed in the project's venv (scripts/setup.sh builds it)")
    key = hashlib.sha256("\n".join([sys.version, *sorted(LLAMA_SERVER_REQUIREMENTS)]).encode()).hexdigest()[
        :16
    ]
    venv = cache_dir() / f"llama-server-{key}"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *LLAMA_SERVER_REQUIREMENTS,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(
                f"could not make the llama-cpp-python server's test venv ({' '.join(step[:4])}): {done.stderr[-500:]}"
            )
    # After pip: the project's packages (llama_cpp, uvicorn, sse-starlette) come after the venv's own.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "workbench-project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = subprocess.run([str(python), "-c", "import llama_cpp.server.app"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"llama_cpp.server does not import in the test venv: {check.stderr[-500:]}")
    ready.write_text("ok\n")
    return python


@contextmanager
def llama_cpp_server(log_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """llama-cpp-python's server on the embedded model; yields its base URL, the model id and the process."""
    from workbench.models.loading import embedded_gguf_path

    python = llama_server_python()
    port = free_port()
    model_id = "smollm2"
    command = [
        str(python), "-m", "llama_cpp.server",
        "--model", str(embedded_gguf_path()), "--model_alias", model_id,
        "--chat_format", "chatml",  # SmolLM2's own format, named rather than read from the file
        "--n_ctx", "4096", "--n_threads", "1",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    # Run beside llama_cpp: this build looks for its CPU backends in the relative path llama_cpp/lib.
    site = Path(sysconfig.get_paths()["purelib"])
    with server_process(command, f"{base}/models", log_path, cwd=site) as process:
        yield base, model_id, process


@contextmanager
def imitating_server(log_path: Path, imitate: str) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """The workbench's own server playing another (see :mod:`tests.server.imitating_server`)."""
    from tests.server.helpers import MODEL_ID

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.server.imitating_server",
        "--port",
        str(port),
        "--imitate",
        imitate,
    ]
    with server_process(command, f"http://127.0.0.1:{port}/health", log_path) as process:
        yield f"http://127.0.0.1:{port}/v1", MODEL_ID, process
