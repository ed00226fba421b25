"""The tool host: tool files that exit, crash, hang or eat memory never take the caller down (issue 11)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from tools import ToolRegistry, default_registry
from tools.host import HostedTool
from workbench.messages import ToolCall

pytestmark = pytest.mark.timeout(180)

GOOD = '''
from tools import tool


@tool
def echo(text: str) -> str:
    """Say the text back (and print noise, which must not disturb the host).

    Args:
        text: What to say.
    """
    print("noise on stdout")
    return text
'''

CALLS = '''
import os
import time

from tools import tool


@tool
def exits() -> str:
    """End the process."""
    os._exit(3)


@tool
def crashes() -> str:
    """Crash the interpreter."""
    import ctypes

    return str(ctypes.string_at(0))


@tool
def hangs() -> str:
    """Never return."""
    time.sleep(300)
    return "late"


@tool
def eats_memory() -> int:
    """Allocate far too much."""
    return len(bytearray(64 * 2**30))


@tool
def reads_stdin() -> str:
    """Read the standard input."""
    return repr(input())


@tool
def pid() -> int:
    """The process id."""
    return os.getpid()
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_by_file(registry: ToolRegistry) -> dict[str, str]:
    return {Path(e.source).name: e.message for e in registry.errors}


def test_a_file_that_exits_or_crashes_at_import_is_named_and_the_rest_loads(tmp_path: Path) -> None:
    write(tmp_path, "a_killer.py", "import os\nos._exit(1)\n")
    write(tmp_path, "b_crasher.py", "import ctypes\nctypes.string_at(0)\n")
    write(tmp_path, "c_good.py", GOOD)
    registry = ToolRegistry()
    registry.load_path(tmp_path)
    assert registry.names() == ["echo"]
    errors = errors_by_file(registry)
    assert (
        "a_killer.py: importing it killed the tool loader (the tool host exited with code 1)"
        in errors["a_killer.py"]
    )
    assert "killed by SIGSEGV" in errors["b_crasher.py"]
    assert registry.call(ToolCall("echo", {"text": "still here"})).content == "still here"
    registry.reload()  # the culprits are tried again, and named again
    assert registry.names() == ["echo"] and set(errors_by_file(registry)) == {"a_killer.py", "b_crasher.py"}


def test_a_file_that_hangs_at_import_is_stopped_and_named(tmp_path: Path) -> None:
    write(tmp_path, "a_good.py", GOOD)
    write(tmp_path, "b_sleeper.py", "import time\ntime.sleep(60)\n")
    registry = ToolRegistry(import_timeout=2)
    started = time.monotonic()
    registry.load_path(tmp_path)
    assert time.monotonic() - started < 30
    assert registry.names() == ["echo"]
    message = errors_by_file(registry)["b_sleeper.py"]
    assert "importing it took longer than 2 s" in message and "Move slow work out of the import" in message
    # The file that loaded before the sleeper was imported again in the fresh host.
    assert registry.call(ToolCall("echo", {"text": "ok"})).content == "ok"


def test_tools_load_in_the_background_with_the_file_being_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "good.py", GOOD)
    write(tmp_path, "sleeper.py", "import time\ntime.sleep(60)\n")
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_TOOL_IMPORT_TIMEOUT_S", "3")
    started = time.monotonic()
    registry = default_registry(wait=False)
    assert time.monotonic() - started < 2
    assert registry.loading
    seen = set()
    while not registry.wait(0.1):
        seen.add(registry.loading_file)
    assert str(tmp_path / "sleeper.py") in seen
    assert {"calculator", "echo"} <= set(registry.names())
    assert not registry.loading and registry.loading_file is None
    assert registry.call(ToolCall("calculator", {"expression": "2 + 2"})).content == "4"
    assert "took longer than 3 s" in errors_by_file(registry)["sleeper.py"]


def test_a_bad_import_timeout_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TOOL_IMPORT_TIMEOUT_S", "-1")
    with pytest.raises(Exception, match="WORKBENCH_TOOL_IMPORT_TIMEOUT_S='-1' is not a positive number"):
        default_registry()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> ToolRegistry:
    folder = tmp_path_factory.mktemp("calls")
    write(folder, "calls.py", CALLS)
    write(folder, "good.py", GOOD)
    registry = ToolRegistry()
    registry.load_path(folder)
    assert registry.errors == []
    return registry


def host_pid(registry: ToolRegistry) -> int:
    return int(registry.call(ToolCall("pid", {})).content)


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ("exits", "ended its process (the tool host exited with code 3); it was restarted"),
        ("crashes", "ended its process (the tool host was killed by SIGSEGV)"),
    ],
)
def test_a_call_that_ends_the_host_is_an_error_and_the_next_call_works(
    hosted: ToolRegistry, tool: str, expected: str
) -> None:
    before = host_pid(hosted)
    result = hosted.call(ToolCall(tool, {}))
    assert result.error and result.error_type == "ToolRaisedError" and expected in result.content
    assert hosted.call(ToolCall("echo", {"text": "after"})).content == "after"
    assert host_pid(hosted) != before
    assert os.getpid() != before


def test_a_call_past_its_limit_is_killed_not_abandoned(hosted: ToolRegistry) -> None:
    before = host_pid(hosted)
    started = time.monotonic()
    result = hosted.call(ToolCall("hangs", {}), timeout=1)
    assert time.monotonic() - started < 10
    assert result.error_type == "ToolTimeoutError" and "was stopped" in result.content
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)  # the process that ran it is gone
    assert hosted.call(ToolCall("echo", {"text": "next"})).content == "next"


def test_a_memory_blow_up_is_an_error_in_the_host(hosted: ToolRegistry) -> None:
    result = hosted.call(ToolCall("eats_memory", {}))
    assert result.error and "MemoryError" in result.content
    assert hosted.call(ToolCall("echo", {"text": "fine"})).content == "fine"


def test_stdin_and_stdout_of_a_tool_do_not_touch_the_protocol(hosted: ToolRegistry) -> None:
    assert "EOFError" in hosted.call(ToolCall("reads_stdin", {})).content
    assert hosted.call(ToolCall("echo", {"text": "clean"})).content == "clean"


def test_hosted_specs_keep_schemas_and_a_callable(hosted: ToolRegistry) -> None:
    spec = hosted.get("echo")
    assert spec is not None and isinstance(spec.function, HostedTool)
    assert spec.parameters["properties"]["text"]["type"] == "string"
    assert spec.function(text="direct") == "direct"
    assert "in the tool host" in repr(spec.function)


def test_mixed_signatures_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixed.py",
        '''
        from tools import tool


        @tool
        def mixed(a: int, **extra: str) -> str:
            """Mix.

            Args:
                a: A number.
                extra: More.
            """
            return "x"


        @tool
        def starred(*values: int) -> int:
            """Sum.

            Args:
                values: Numbers.
            """
            return sum(values)
        ''',
    )
    registry = ToolRegistry()
    registry.load_path(path)
    assert registry.names() == []
    messages = [e.message for e in registry.errors]
    assert len(messages) == 2
    assert f"'mixed' ({path}:5)" in messages[0] and "**extra" in messages[0]
    assert f"'starred' ({path}:16)" in messages[1] and "*values" in messages[1]
