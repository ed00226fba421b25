"""The offline built-ins: current time, random number, unit converter, and their schemas."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import tools
from tools import ToolRegistry
from tools.builtins import convert_units, current_time, random_number
from tools.units import UnitError
from workbench.messages import ToolCall


def test_builtin_schemas():
    registry = ToolRegistry()
    registry.load_builtins()
    assert registry.errors == []
    params = {s.name: s.parameters for s in registry.specs()}
    assert params["calculator"]["required"] == ["expression"]
    assert "required" not in params["current_time"]
    assert params["random_number"]["required"] == ["low", "high"]
    assert params["random_number"]["properties"]["seed"]["nullable"] is True
    assert params["convert_units"]["properties"]["value"]["type"] == "number"
    assert all(s.source == "builtin" for s in registry.specs())


def test_current_time_utc_is_now():
    text = current_time()
    match = re.search(r"ISO 8601: (\S+)$", text)
    assert match and " in UTC" in text
    assert abs(datetime.fromisoformat(match.group(1)) - datetime.now(timezone.utc)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("zone", "key"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("europe/paris", "Europe/Paris"),
        ("Tokyo", "Asia/Tokyo"),
        ("America/New York", "America/New_York"),
        ("  UTC ", "UTC"),
    ],
)
def test_current_time_zones(zone, key):
    assert f" in {key}, ISO 8601: " in current_time(zone)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Pariss", "Did you mean 'Europe/Paris'"),
        ("Mars/Olympus", "Unknown time zone 'Mars/Olympus'"),
        ("../../etc/passwd", "Use an IANA name such as 'Europe/Paris'"),
        ("/etc/localtime", "Unknown time zone"),
        ("", "Unknown time zone ''"),
    ],
)
def test_current_time_unknown_zone(zone, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        current_time(zone)


def test_random_number_is_seeded_and_inclusive():
    assert random_number(1, 100, seed=42) == random_number(1, 100, seed=42)
    assert {random_number(1, 3, seed=s) for s in range(50)} == {1, 2, 3}
    assert random_number(5, 5) == 5
    with pytest.raises(ValueError, match=re.escape("low (9) is larger than high (1); swap them.")):
        random_number(9, 1)


def test_random_number_through_the_registry():
    registry = ToolRegistry()
    registry.load_builtins()
    first = registry.call(ToolCall("random_number", {"low": "1", "high": "6", "seed": "7"}))
    again = registry.call(ToolCall("random_number", {"low": 1, "high": 6, "seed": 7}))
    assert first.error is False and first.content == again.content and 1 <= int(first.content) <= 6


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "mi", "km", "1 mi = 1.609344 km"),
        (10, "Kilometers", "miles", "10 km = 6.213711922 mi"),
        (12, "inches", "ft", "12 in = 1 ft"),
        (1, "kg", "lb", "1 kg = 2.204622622 lb"),
        (100, "°F", "celsius", "100 °F = 37.77777778 °C"),
        (0, "C", "K", "0 °C = 273.15 K"),
        (-40, "degrees Celsius", "F", "-40 °C = -40 °F"),
        (90, "minutes", "hours", "90 min = 1.5 h"),
        (1, "GiB", "MB", "1 GiB = 1073.741824 MB"),
        (1, "KB", "bit", "1 kB = 8000 bit"),
        (100, "km/h", "mph", "100 km/h = 62.13711922 mph"),
        (1, "gallon", "l", "1 gal = 3.785411784 l"),
        (1, "acre", "m²", "1 acre = 4046.856422 m2"),
        (2.5, "h", "s", "2.5 h = 9000 s"),
    ],
)
def test_convert_units(value, source, target, expected):
    assert convert_units(value, source, target) == expected


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("kg", "m", "Cannot convert kg (mass) to m (length): both units must measure the same thing."),
        ("°C", "GB", "Cannot convert °C (temperature) to GB (data)"),
        ("furlongz", "m", "Unknown unit 'furlongz'."),
        ("kilometrs", "m", "Did you mean 'kilometre', 'kilometer'"),
        ("m", "", "Unknown unit ''"),
    ],
)
def test_convert_units_errors(source, target, expected):
    with pytest.raises(UnitError, match=re.escape(expected)):
        convert_units(1, source, target)


def test_below_absolute_zero():
    with pytest.raises(UnitError, match="below absolute zero"):
        convert_units(-300, "C", "F")


def test_no_tool_runs_commands_on_the_host():
    # The package imports nothing that starts processes, but for the tool host, which starts its own
    # Python process to import and call the user's tool files (tests/tools/test_tool_host.py), and the
    # launcher script of stdio MCP servers (tests/mcp/test_mcp_client.py: only PATH, HOME and their env).
    for path in Path(tools.__file__).parent.glob("*.py"):
        if path.name in ("host.py", "mcp_launcher.py"):
            continue
        text = path.read_text()
        for forbidden in (
            r"\bsubprocess\b",
            r"\bos\.(system|popen|exec|spawn)",
            r"\bimport pty\b",
            r"(?<![\w.])eval\(",
        ):
            assert not re.search(forbidden, text), (path.name, forbidden)
