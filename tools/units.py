"""Unit tables and conversion for the unit-converter tool.

Each dimension maps unit symbols to their size in the dimension's base unit; temperature, which has
offsets, is handled on its own. Names are looked up exactly, then case-insensitively, then without a
plural "s", so "Miles", "KB" and "km/h" all work.
"""

from __future__ import annotations

import difflib
import re

UNITS: dict[str, dict[str, float]] = {
    "length": {
        "m": 1.0, "km": 1e3, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "nm": 1e-9,
        "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "in": 0.0254, "nmi": 1852.0,
    },
    "mass": {
        "kg": 1.0, "g": 1e-3, "mg": 1e-6, "t": 1e3,
        "lb": 0.45359237, "oz": 0.028349523125, "st": 6.35029318,
    },
    "time": {
        "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0,
        "day": 86400.0, "week": 604800.0, "year": 31557600.0,  # a Julian year, 365.25 days
    },
    "data": {
        "B": 1.0, "bit": 0.125, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
        "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40, "PiB": 2.0**50,
        "kbit": 125.0, "Mbit": 1.25e5, "Gbit": 1.25e8,
    },
    "volume": {
        "l": 1.0, "ml": 1e-3, "cl": 1e-2, "dl": 0.1, "m3": 1e3, "cm3": 1e-3,
        "gal": 3.785411784, "qt": 0.946352946, "pt": 0.473176473, "cup": 0.2365882365,
        "fl_oz": 0.0295735295625, "tbsp": 0.01478676478125, "tsp": 0.00492892159375,
    },
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 1852 / 3600, "ft/s": 0.3048},
    "area": {
        "m2": 1.0, "km2": 1e6, "cm2": 1e-4, "ha": 1e4, "acre": 4046.8564224,
        "ft2": 0.09290304, "mi2": 2589988.110336,
    },
    "temperature": {"°C": 0.0, "°F": 0.0, "K": 0.0},  # converted with offsets, see _to_kelvin
}  # fmt: skip

ALIASES: dict[str, str] = {
    "meter": "m", "metre": "m", "kilometer": "km", "kilometre": "km", "centimeter": "cm",
    "centimetre": "cm", "millimeter": "mm", "millimetre": "mm", "micrometer": "um", "µm": "um",
    "nanometer": "nm", "mile": "mi", "yard": "yd", "foot": "ft", "feet": "ft", "inch": "in",
    "inches": "in", "nautical mile": "nmi",
    "kilogram": "kg", "gram": "g", "milligram": "mg", "tonne": "t", "pound": "lb", "lbs": "lb",
    "ounce": "oz", "stone": "st",
    "second": "s", "sec": "s", "millisecond": "ms", "microsecond": "us", "µs": "us",
    "nanosecond": "ns", "minute": "min", "hour": "h", "hr": "h", "d": "day", "wk": "week",
    "yr": "year",
    "byte": "B", "kilobyte": "kB", "megabyte": "MB", "gigabyte": "GB", "terabyte": "TB",
    "petabyte": "PB", "kibibyte": "KiB", "mebibyte": "MiB", "gibibyte": "GiB", "tebibyte": "TiB",
    "pebibyte": "PiB", "kilobit": "kbit", "megabit": "Mbit", "gigabit": "Gbit",
    "liter": "l", "litre": "l", "milliliter": "ml", "millilitre": "ml", "gallon": "gal",
    "quart": "qt", "pint": "pt", "fl oz": "fl_oz", "fluid ounce": "fl_oz", "tablespoon": "tbsp",
    "teaspoon": "tsp", "m^3": "m3", "m³": "m3", "cm^3": "cm3", "cm³": "cm3", "cc": "cm3",
    "kph": "km/h", "kmh": "km/h", "km/hr": "km/h", "mi/h": "mph", "knot": "kn", "kt": "kn",
    "m^2": "m2", "m²": "m2", "km^2": "km2", "km²": "km2", "cm^2": "cm2", "cm²": "cm2",
    "hectare": "ha", "ft^2": "ft2", "ft²": "ft2", "sq ft": "ft2", "mi^2": "mi2", "mi²": "mi2",
    "c": "°C", "celsius": "°C", "degc": "°C", "f": "°F", "fahrenheit": "°F", "degf": "°F",
    "kelvin": "K",
}  # fmt: skip


def _unambiguous_folded(names: dict[str, str]) -> dict[str, str]:
    """Map each case-folded name to its symbol, leaving out folded names that fit several units."""
    symbols: dict[str, set[str]] = {}
    for name, symbol in names.items():
        symbols.setdefault(name.casefold(), set()).add(symbol)
    return {name: found.pop() for name, found in symbols.items() if len(found) == 1}


_DIMENSION = {symbol: dim for dim, table in UNITS.items() for symbol in table}
_EXACT = {**{s: s for s in _DIMENSION}, **ALIASES}
_FOLDED = _unambiguous_folded(_EXACT)
_DEGREES = re.compile(r"^deg(ree)?s?\s+", re.IGNORECASE)  # "deg C", "degrees Fahrenheit"


class UnitError(ValueError):
    """A unit is unknown, or two units measure different things."""


def resolve(name: str) -> str:
    """Return the symbol for a unit name, symbol or alias.

    Raises:
        UnitError: If the unit is unknown; the message suggests close names.
    """
    text = " ".join(name.strip().split())
    text = _DEGREES.sub("", text)
    for candidate in (text, text.casefold(), text[:-1].casefold() if text.endswith("s") else ""):
        symbol = _EXACT.get(candidate) or _FOLDED.get(candidate)
        if symbol:
            return symbol
    close = difflib.get_close_matches(text, list(_EXACT), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = "; ".join(f"{dim}: {', '.join(table)}" for dim, table in UNITS.items())
    raise UnitError(f"Unknown unit {name!r}.{hint} Known units are {listing}.")


def convert(value: float, from_unit: str, to_unit: str) -> tuple[float, str, str]:
    """Convert ``value`` and return ``(result, from_symbol, to_symbol)``.

    Raises:
        UnitError: If a unit is unknown, the units measure different things, or a temperature is
            below absolute zero.
    """
    source, target = resolve(from_unit), resolve(to_unit)
    if _DIMENSION[source] != _DIMENSION[target]:
        raise UnitError(
            f"Cannot convert {source} ({_DIMENSION[source]}) to {target} ({_DIMENSION[target]}): "
            "both units must measure the same thing."
        )
    if _DIMENSION[source] == "temperature":
        kelvin = _to_kelvin(value, source)
        if kelvin < 0:
            raise UnitError(f"{value:g} {source} is below absolute zero (0 K), so it is not a temperature.")
        return _from_kelvin(kelvin, target), source, target
    table = UNITS[_DIMENSION[source]]
    return value * table[source] / table[target], source, target


def _to_kelvin(value: float, unit: str) -> float:
    if unit == "°C":
        return value + 273.15
    if unit == "°F":
        return (value - 32) * 5 / 9 + 273.15
    return value


def _from_kelvin(kelvin: float, unit: str) -> float:
    if unit == "°C":
        return kelvin - 273.15
    if unit == "°F":
        return (kelvin - 273.15) * 9 / 5 + 32
    return kelvin
