"""Lengths, in metres."""

import re

# Metres per unit.
FACTORS = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
}


def to_meters(value, unit):
    """`value` `unit`s in metres; ValueError for an unknown unit."""
    try:
        return value * FACTORS[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}") from None


# A number and a unit, e.g. "12 km".
_LENGTH = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


def parse_length(text):
    """A length such as "12 km" in metres; ValueError when it is not one."""
    match = _LENGTH.fullmatch(text)
    if match is None:
        raise ValueError(f"not a length: {text!r}")
    return to_meters(int(match.group(1)), match.group(2))
