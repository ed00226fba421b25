"""Loading tools from user folders, WORKBENCH_TOOLS_PATH and entry points; broken files beside good ones."""

from __future__ import annotations

import os
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from tools import ToolRegistry, ToolSpec, default_registry
from workbench.messages import ToolCall


def spec_of(registry: ToolRegistry, name: str) -> ToolSpec:
    """The registered tool ``name`` (the test fails if there is none)."""
    spec = registry.get(name)
    assert spec is not None, f"no tool {name!r}"
    return spec

GOOD = '''
from typing import Literal
from tools import tool

@tool
def shout(text: str, times: int = 1) -> str:
    """Shout some text.

    Args:
        text: What to shout.
        times: How often.
    """
    return (text.upper() + "! ") * times

@tool(name="whisper_it")
def whisper(text: str, style: Literal["soft", "softer"] = "soft") -> str:
    """Whisper some text.

    Args:
        text: What to whisper.
        style: How softly.
    """
    return text.lower()

def helper(x):
    return x
'''

BROKEN = {
    "syntax.py": ("def oops(:\n    pass\n", ["syntax.py, line 1: syntax error", "Fix the file, then reload"]),
    "missing_import.py": (
        "import numpy_does_not_exist_42\n",
        [
            "missing_import.py, line 1",
            "ModuleNotFoundError",
            "numpy_does_not_exist_42",
            "Install the missing",
        ],
    ),
    "raises.py": ("x = 1\ny = 1 / 0\n", ["raises.py, line 2", "ZeroDivisionError: division by zero"]),
    "exits.py": ("import sys\nsys.exit(3)\n", ["exits.py, line 2", "SystemExit: 3"]),
    "bad_name.py": (
        'from tools import tool\n\n@tool(name="newline_at_end\\n")\ndef f(x: int) -> int:\n'
        '    """Echo.\n\n    Args:\n        x: A number.\n    """\n    return x\n',
        ["is not valid: use letters, digits"],
    ),
}

HALF_BROKEN = '''
from tools import tool

@tool
def no_hints(x):
    """Echo.

    Args:
        x: A value.
    """
    return x

@tool
def no_doc(x: int) -> int:
    return x

@tool
def fine(x: int) -> int:
    """Echo a number.

    Args:
        x: A number.
    """
    return x
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_registers_only_marked_functions(tmp_path):
    path = write(tmp_path, "good.py", GOOD)
    registry = ToolRegistry()
    registry.load_path(tmp_path)
    assert registry.names() == ["shout", "whisper_it"]
    assert registry.errors == []
    assert spec_of(registry, "shout").source == str(path)
    assert registry.call(ToolCall("shout", {"text": "hi", "times": "2"})).content == "HI! HI! "
    assert spec_of(registry, "whisper_it").parameters["properties"]["style"]["enum"] == ["soft", "softer"]


def test_broken_files_are_reported_and_the_rest_still_loads(tmp_path):
    write(tmp_path, "good.py", GOOD)
    for name, (text, _) in BROKEN.items():
        write(tmp_path, name, text)
    half = write(tmp_path, "half.py", HALF_BROKEN)
    registry = ToolRegistry()
    registry.load_path(tmp_path)
    assert registry.names() == ["shout", "whisper_it", "fine"]
    by_source: dict[str, list[str]] = {}
    for error in registry.errors:
        by_source.setdefault(Path(error.source).name, []).append(error.message)
    assert sorted(by_source) == sorted([*BROKEN, "half.py"])
    for name, (_, expected) in BROKEN.items():
        for fragment in expected:
            assert fragment in by_source[name][0], (name, by_source[name][0])
    no_hints, no_doc = by_source["half.py"]
    assert f"'no_hints' ({half}:4)" in no_hints and "missing a type hint" in no_hints
    assert "'no_doc'" in no_doc and "no docstring" in no_doc


def test_missing_folder_is_a_load_error(tmp_path):
    registry = ToolRegistry()
    registry.load_path([tmp_path / "nope"])
    assert len(registry.errors) == 1
    assert "does not exist; check WORKBENCH_TOOLS_PATH or --tools-path" in registry.errors[0].message


def test_single_file_and_future_annotations_and_dataclasses(tmp_path):
    path = write(
        tmp_path,
        "modern.py",
        '''
        from __future__ import annotations
        from dataclasses import dataclass
        from tools import tool

        @dataclass
        class Point:
            x: int

        @tool
        def point(x: int | None = None) -> str:
            """Make a point.

            Args:
                x: The coordinate.
            """
            return repr(Point(x or 0))
        ''',
    )
    registry = ToolRegistry()
    registry.load_path(path)
    assert registry.errors == []
    assert registry.call(ToolCall("point", {})).content == "Point(x=0)"


def test_env_path_is_split_like_path(tmp_path, monkeypatch):
    write(tmp_path / "a", "one.py", GOOD)
    write(tmp_path / "b", "two.py", HALF_BROKEN)
    folders = [str(tmp_path / "a"), "", str(tmp_path / "b")]
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", os.pathsep.join(folders))
    registry = ToolRegistry.from_env(builtins=False, entry_points=False)
    assert registry.names() == ["shout", "whisper_it", "fine"]
    assert {Path(e.source).name for e in registry.errors} == {"two.py"}


def test_default_registry_has_builtins_and_cli_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOOLS_PATH", raising=False)
    write(tmp_path, "good.py", GOOD)
    registry = default_registry(extra_paths=[tmp_path])
    assert registry.names()[:4] == ["calculator", "current_time", "random_number", "convert_units"]
    assert "shout" in registry


def test_duplicate_names_across_files_keep_the_first(tmp_path):
    first = write(tmp_path, "a.py", GOOD)
    second = write(tmp_path, "b.py", GOOD.replace("Shout some text", "Shout louder"))
    registry = ToolRegistry()
    registry.load_path(tmp_path)
    assert registry.names() == ["shout", "whisper_it"]
    assert spec_of(registry, "shout").description == "Shout some text."
    assert [e.source for e in registry.errors] == [str(second), str(second)]
    message = registry.errors[0].message
    assert f"Two tools are named 'shout': one from {first} and one from {second}" in message
    assert "rename the other, for example with @tool(name='shout_2')" in message


def test_duplicate_of_a_builtin_and_reexport_of_a_builtin(tmp_path):
    write(
        tmp_path,
        "calc.py",
        '''
        from tools import tool
        from tools.builtins import calculator  # the same function: not a duplicate

        @tool
        def current_time() -> str:
            """My own clock."""
            return "noon"
        ''',
    )
    registry = ToolRegistry()
    registry.load_builtins()
    registry.load_path(tmp_path)
    assert len(registry.errors) == 1
    assert "Two tools are named 'current_time': one from builtin and one from" in registry.errors[0].message
    assert spec_of(registry, "current_time").source == "builtin"


def test_reload_picks_up_new_changed_and_deleted_files(tmp_path):
    changing = write(tmp_path, "changing.py", GOOD)
    doomed = write(tmp_path, "doomed.py", HALF_BROKEN)
    registry = ToolRegistry()
    registry.load_builtins()
    registry.load_path(tmp_path)
    assert registry.call(ToolCall("shout", {"text": "a"})).content == "A! "
    assert "fine" in registry and len(registry.errors) == 2

    # Same size, same second: a stale bytecode cache would miss this edit.
    changing.write_text(textwrap.dedent(GOOD).replace('"! "', '"? "'))
    doomed.unlink()
    write(tmp_path, "new.py", GOOD.replace("def shout", "def yell").replace("whisper_it", "murmur"))
    registry.reload()

    assert registry.call(ToolCall("shout", {"text": "a"})).content == "A? "
    assert "fine" not in registry
    assert {"calculator", "shout", "whisper_it", "yell", "murmur"} <= set(registry.names())
    assert registry.errors == []


def test_reload_keeps_tools_added_by_hand(tmp_path):
    registry = ToolRegistry()
    from tools.builtins import calculator

    registry.add(calculator)
    registry.load_path(tmp_path)
    registry.reload()
    assert registry.names() == ["calculator"]


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    package = tmp_path / "site"
    write(package, "wb_ep_tools.py", GOOD + "\ndef plain(n: int) -> int:\n    '''Square.\n\n    Args:\n"
          "        n: A number.\n    '''\n    return n * n\n")  # fmt: skip
    write(package, "wb_ep_empty.py", "X = 1\n")
    monkeypatch.syspath_prepend(str(package))
    group = "workbench.tools"
    points = [
        metadata.EntryPoint(name="loud", value="wb_ep_tools", group=group),
        metadata.EntryPoint(name="square", value="wb_ep_tools:plain", group=group),
        metadata.EntryPoint(name="gone", value="wb_ep_not_installed", group=group),
        metadata.EntryPoint(name="empty", value="wb_ep_empty", group=group),
        metadata.EntryPoint(name="number", value="wb_ep_empty:X", group=group),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: [p for p in points if p.group == group])


def test_entry_points_modules_and_functions(fake_entry_points):
    registry = ToolRegistry()
    registry.load_entry_points()
    assert registry.names() == ["shout", "whisper_it", "plain"]
    assert spec_of(registry, "shout").source == "entry point loud = wb_ep_tools"
    assert registry.call(ToolCall("plain", {"n": 7})).content == "49"
    messages = {e.source: e.message for e in registry.errors}
    assert "No module named 'wb_ep_not_installed'" in messages["entry point gone = wb_ep_not_installed"]
    assert "Reinstall the package" in messages["entry point gone = wb_ep_not_installed"]
    assert "names a module with no @tool functions" in messages["entry point empty = wb_ep_empty"]
    assert "must name a module or a function, not 1" in messages["entry point number = wb_ep_empty:X"]


def test_the_documented_examples_load(tmp_path):
    write(
        tmp_path,
        "temperature.py",
        '''
        from typing import Literal

        from tools import tool, tool_from_schema


        @tool
        def convert_temperature(value: float, to: Literal["celsius", "fahrenheit"]) -> float:
            """Convert a temperature between Celsius and Fahrenheit.

            Args:
                value: The temperature to convert.
                to: The unit to convert into.
            """
            return (value - 32) * 5 / 9 if to == "celsius" else value * 9 / 5 + 32


        def search(query, limit=5):
            return [query] * limit


        search_tool = tool_from_schema(
            {"type": "function", "function": {
                "name": "search", "description": "Search my notes.",
                "parameters": {"type": "object", "properties": {
                    "query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
                    "required": ["query"]}}},
            search,
        )
        ''',
    )
    registry = ToolRegistry()
    registry.load_path(tmp_path)
    assert registry.errors == []
    assert registry.names() == ["convert_temperature", "search"]
    assert spec_of(registry, "search").source == str(tmp_path / "temperature.py")
    result = registry.call(ToolCall("convert_temperature", {"value": "212", "to": "Celsius"}))
    assert result.content == "100.0"
    assert registry.call(ToolCall("search", {"query": "x", "limit": 2})).content == '["x", "x"]'
    assert (
        "argument 'limit': 0 is less than the minimum of 1"
        in registry.call(ToolCall("search", {"query": "x", "limit": 0})).content
    )
