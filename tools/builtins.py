"""The built-in tools. All work offline, and none runs a command on the host.

Their docstrings are what the model reads, so they say what each argument accepts.
"""

from __future__ import annotations

import difflib
import functools
import random
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

from tools.arithmetic import evaluate, format_number
from tools.spec import tool
from tools.units import convert


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the exact result.

    Args:
        expression: The arithmetic to compute, such as "1234 + 4321" or "sqrt(2) * (3 - 1) ** 2". It may use
            + - * / // % ** (or ^), parentheses, pi, e, and the functions abs, round, min, max, sqrt, exp,
            log, log10, log2, sin, cos, tan, asin, acos, atan, floor, ceil and factorial.
    """
    return format_number(evaluate(expression))


@tool
def current_time(timezone: str = "UTC") -> str:
    """Get the current date and time in a time zone.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris", "America/New_York" or "UTC".
    """
    now = datetime.now(_zone(timezone))
    iso = now.isoformat(timespec="seconds")
    return f"{now:%A %Y-%m-%d %H:%M:%S} {now.tzname()} in {now.tzinfo}, ISO 8601: {iso}"


@tool
def random_number(low: int, high: int, seed: int | None = None) -> int:
    """Pick a random whole number between low and high, both included.

    Args:
        low: The smallest number allowed.
        high: The largest number allowed.
        seed: A seed that makes the pick repeatable; leave it out for a fresh pick.
    """
    if low > high:
        raise ValueError(f"low ({low}) is larger than high ({high}); swap them.")
    return random.Random(seed).randint(low, high)


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert an amount between units of length, mass, time, temperature, data, volume, speed or area.

    Args:
        value: The amount to convert.
        from_unit: The unit of the amount, such as "km", "lb", "°F", "GiB", "mph" or "acre".
        to_unit: The unit to convert into; it must measure the same thing.
    """
    result, source, target = convert(value, from_unit, to_unit)
    return f"{format_number(value)} {source} = {format(result, '.10g')} {target}"


@functools.cache
def _zone_names() -> dict[str, str]:
    """Map case-folded IANA names to their spelling (reading tzdata takes a moment, hence the cache)."""
    return {name.casefold(): name for name in available_timezones()}


def _zone(name: str) -> ZoneInfo:
    text = name.strip().replace(" ", "_")
    names = _zone_names()
    # Accept "europe/paris" and a bare city ("Tokyo") when only one zone ends with it.
    cities = [full for folded, full in names.items() if folded.rsplit("/", 1)[-1] == text.casefold()]
    key = names.get(text.casefold()) or (cities[0] if len(cities) == 1 else None)
    if key is not None:
        return ZoneInfo(key)
    close = difflib.get_close_matches(text, list(names.values()), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown time zone {name!r}.{hint} "
        "Use an IANA name such as 'Europe/Paris', 'America/New_York' or 'UTC'."
    )
