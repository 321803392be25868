"""Durations written the way Kubernetes and Prometheus users write them: `30s`, `5m`, `1h30m`."""

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds in a duration string such as `90s`, `5m` or `1h30m` (a bare number means seconds)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m' or '1h30m'")
    if isinstance(value, int | float):
        return _finite(float(value))
    text = str(value).strip()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration; use e.g. '30s', '5m' or '1h30m'")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _finite(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"{seconds!r} is not a duration; use e.g. '30s', '5m' or '1h30m'")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of `1h30m`, `5m`, `30s` that states `seconds` exactly (whole seconds)."""
    s = int(round(seconds))
    out = "".join(f"{q}{u}" for q, u in ((s // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")) if q)
    return out or "0s"
