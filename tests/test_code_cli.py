"""``python -m workbench exec`` and ``ask --mode code``: as a user runs them (subprocesses), and in-process."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kernel import KernelSession
from kernel.errors import KernelGatewayError
from tests.cli_helpers import run_cli, run_main
from tests.kernel.kernel_gateway import RunningGateway
from workbench.cli import exec as exec_command
from workbench.kernels import gateway_config


@pytest.mark.kernel
def test_exec_runs_a_file_and_prints_its_outputs(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n6 * 7\n")
    result = run_cli("exec", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n42\n"
    assert result.stderr == "oops\n", "no NOT sandboxed warning: the sandbox works here"


@pytest.mark.kernel
def test_exec_reads_standard_input() -> None:
    result = run_cli("exec", "-", stdin="print(sum(range(101)))\n")
    assert (result.returncode, result.stdout) == (0, "5050\n"), result.stderr


@pytest.mark.kernel
def test_exec_exits_1_when_the_code_raises() -> None:
    result = run_cli("exec", "-", stdin="print('before')\n1 / 0\n")
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "ZeroDivisionError: division by zero" in result.stderr


@pytest.mark.kernel
def test_exec_exits_124_on_a_timeout_and_says_why() -> None:
    result = run_cli(
        "exec", "--timeout", "1", "-", stdin="import time\nprint('start', flush=True)\ntime.sleep(1000)\n"
    )
    assert result.returncode == 124, result.stderr
    assert result.stdout == "start\n"
    assert "KeyboardInterrupt" in result.stderr
    assert "[workbench] The run was interrupted because it exceeded the 1 s time limit." in result.stderr


@pytest.mark.kernel
def test_exec_exits_125_when_the_kernel_dies() -> None:
    result = run_cli("exec", "-", stdin="import os\nos._exit(3)\n")
    assert result.returncode == 125, result.stderr
    assert "exited with code 3" in result.stderr and "lost" in result.stderr


@pytest.mark.kernel
def test_exec_json_has_every_output_and_the_images() -> None:
    code = "import matplotlib.pyplot as plt\nprint('x')\nplt.plot([1, 2])\nplt.figure()\nplt.plot([2, 1])\n'done'\n"
    result = run_cli("exec", "--json", "-", stdin=code)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sandboxed"] is True and data["stdout"] == "x\n" and data["result"] == "'done'"
    assert data["error"] is None and data["timed_out"] is False and data["exit_status"] == 0
    assert data["image_count"] == 2
    assert all(base64.b64decode(png).startswith(b"\x89PNG") for png in data["images"])


@pytest.mark.kernel
def test_exec_text_output_counts_images() -> None:
    result = run_cli("exec", "-", stdin="import matplotlib.pyplot as plt\nplt.plot([1, 2]);\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[image 1: ") and "PNG" in result.stdout


def test_exec_of_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    status, out, err = run_main("exec", str(tmp_path / "missing.py"))
    assert status == 1 and out == ""
    assert err == (
        f"Error: There is no file {str(tmp_path / 'missing.py')!r}; give the path of a Python file, "
        "or '-' for stdin.\n"
    )


@pytest.mark.kernel
def test_exec_warns_when_not_sandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exec_command, "open_kernel", lambda: KernelSession(sandbox=False))
    status, out, err = run_main("exec", "-", stdin="print(1 + 1)\n")
    assert (status, out) == (0, "2\n")
    assert err.startswith("Warning: the code runs NOT sandboxed (sandbox=False)")


@pytest.mark.model
@pytest.mark.kernel
@pytest.mark.parametrize("where", ["local", "gateway"])
def test_ask_code_json_shows_code_turns_and_observations(where: str, request: pytest.FixtureRequest) -> None:
    env = gateway_env(request.getfixturevalue("kernel_gateway")) if where == "gateway" else {}
    result = run_cli(
        "ask",
        "--mode",
        "code",
        "--json",
        "--temperature",
        "0",
        "--max-new-tokens",
        "40",
        "--max-rounds",
        "1",
        "What is 2**20?",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert ("runs on the Kernel Gateway" in result.stderr) == (where == "gateway")
    messages = json.loads(result.stdout)["messages"]
    assert [m["role"] for m in messages][:4] == ["system", "user", "assistant", "observation"]
    code_turn, observation = messages[2], messages[3]
    assert code_turn["interpreter"] is True and "```python" in code_turn["content"]
    # The code is the model's own pick, which changes with the CPU: assert that it ran and came back.
    assert observation["name"] == "interpreter" and observation["execution"]["outputs"]
    assert observation["content"].strip()
    assert "What is 3**4?" not in result.stdout, "the worked example is not part of the transcript"


@pytest.mark.model
@pytest.mark.kernel
def test_ask_code_prints_the_code_and_its_output() -> None:
    result = run_cli(
        "ask",
        "--mode",
        "code",
        "--temperature",
        "0",
        "--max-new-tokens",
        "40",
        "--max-rounds",
        "1",
        "Plot the squares of 1 to 5 with matplotlib.",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("```python\n")
    assert "[interpreter" in result.stdout


def gateway_env(gateway: RunningGateway, token: str = "") -> dict[str, str]:
    """The environment that sends ``exec``'s kernel to the tests' Kernel Gateway."""
    return {
        "WORKBENCH_KERNEL_GATEWAY": gateway.config.url,
        "WORKBENCH_KERNEL_GATEWAY_TOKEN": token or gateway.config.token,
        "WORKBENCH_KERNEL_GATEWAY_KERNEL": gateway.config.kernel_name,
    }


@pytest.mark.kernel
def test_exec_runs_on_the_kernel_gateway_and_says_so(kernel_gateway: RunningGateway) -> None:
    code = "import os\nprint('hi')\nos.environ['KERNEL_MEMORY_LIMIT']\n"
    result = run_cli("exec", "--json", "-", stdin=code, env=gateway_env(kernel_gateway))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["stdout"], data["result"], data["sandboxed"]) == ("hi\n", repr(str(2 * 1024**3)), False)
    assert data["gateway"] == kernel_gateway.config.url
    assert f"runs on the Kernel Gateway at {kernel_gateway.config.url}" in result.stderr
    assert "NOT sandboxed" not in result.stderr


@pytest.mark.kernel
def test_exec_with_a_wrong_gateway_token_exits_1_and_says_what_to_do(kernel_gateway: RunningGateway) -> None:
    result = run_cli("exec", "-", stdin="1\n", env=gateway_env(kernel_gateway, token="wrong-token"))
    assert result.returncode == 1
    assert "refused the token" in result.stderr and "WORKBENCH_KERNEL_GATEWAY_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr and "wrong-token" not in result.stderr


def test_the_gateway_settings_come_from_the_environment() -> None:
    assert gateway_config({}) is None
    config = gateway_config(
        {
            "WORKBENCH_KERNEL_GATEWAY": " https://gw.example:8888/prefix ",
            "WORKBENCH_KERNEL_GATEWAY_TOKEN": "t0k",
            "KERNEL_NAMESPACE": "team-a",
            "HOME": "/root",
        }
    )
    assert config is not None
    assert (config.url, config.token, config.kernel_name) == ("https://gw.example:8888/prefix", "t0k", "")
    assert config.env == {"KERNEL_NAMESPACE": "team-a"} and config.where == "https://gw.example:8888"
    with pytest.raises(KernelGatewayError, match=r"WORKBENCH_KERNEL_GATEWAY=.* is not an http"):
        gateway_config({"WORKBENCH_KERNEL_GATEWAY": "gw.example:8888"})


def test_exec_with_no_gateway_at_the_address_exits_1_and_says_so() -> None:
    from tests.e2e.streamlit_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("exec", "-", stdin="1\n", env={"WORKBENCH_KERNEL_GATEWAY": url})
    assert result.returncode == 1
    assert (
        f"The Kernel Gateway at {url} cannot be reached" in result.stderr and "Traceback" not in result.stderr
    )
