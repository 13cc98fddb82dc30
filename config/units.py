"""Quantities with units in configuration files: sizes and durations.

Operators write ``message_size = "25MiB"`` or ``idle_timeout = "30m"``; a bare number is bytes or
seconds. Both types validate into plain ``int`` (bytes) and ``float`` (seconds) so the rest of the
code never sees a unit.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_DURATION_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


_SIZE_HELP = "expected a size such as 1048576 or '1MiB' (units: B, KB, MB, GB, KiB, MiB, GiB)"
_DURATION_HELP = "expected a duration such as 30 or '30s' (units: ms, s, m, h, d)"


def _split(
    value: str, units: dict[str, float] | dict[str, int], help_text: str
) -> tuple[float, float]:
    match = _QUANTITY.match(value)
    if match is None or match.group(2).lower() not in units:
        raise ValueError(help_text)
    return float(match.group(1)), float(units[match.group(2).lower()])


def parse_size(value: object) -> int:
    """Bytes from an int or a string such as ``"25MiB"``; negative or fractional bytes refused."""
    if isinstance(value, bool):
        raise ValueError("expected a size, not a boolean")
    if isinstance(value, int):
        number, factor = float(value), 1.0
    elif isinstance(value, str):
        number, factor = _split(value, _SIZE_UNITS, _SIZE_HELP)
    else:
        raise ValueError(_SIZE_HELP)
    size = number * factor
    if size < 0 or size != int(size):
        raise ValueError("expected a whole, non-negative number of bytes")
    return int(size)


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        number, factor = _split(value, _DURATION_UNITS, _DURATION_HELP)
        seconds = number * factor
    else:
        raise ValueError(_DURATION_HELP)
    if seconds < 0:
        raise ValueError("expected a non-negative duration")
    return seconds


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def format_duration(seconds: float) -> str:
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds:g}s"


Size = Annotated[int, BeforeValidator(parse_size), PlainSerializer(format_size)]
"""A size in bytes; the file may say ``1048576``, ``"1MiB"`` or ``"1MB"``."""

Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
"""A duration in seconds; the file may say ``30``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"7d"``."""
