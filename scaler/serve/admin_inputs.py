"""Admin API request fields checked and converted, every problem named by its field.

Each function appends what is wrong to `problems` (so one INVALID_ARGUMENT lists everything) and
returns a usable value anyway; the caller raises once all fields are read.
"""

from __future__ import annotations

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from helios.engine.types import Forecast, Series

from ..config.durations import parse_duration
from ..pb import admin_pb2 as pb
from .calls import CallError

MAX_SAMPLES = 20_000  # an ad-hoc series: about 70 days at 5 minutes
MAX_HORIZON_STEPS = 2016  # a week at 5 minutes
LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a protobuf Timestamp holds


def series(message: pb.Series, field: str, problems: list[str], required: bool = True) -> Series:
    """An ad-hoc series: 1..MAX_SAMPLES finite values, timestamps strictly increasing."""
    samples = message.samples
    if not samples and not required:
        return Series(np.empty(0, np.int64), np.empty(0))
    if not 1 <= len(samples) <= MAX_SAMPLES:
        problems.append(f"{field}.samples: {len(samples)} given; 1 to {MAX_SAMPLES} allowed")
        return Series(np.empty(0, np.int64), np.empty(0))
    ts = np.fromiter((s.timestamp.seconds for s in samples), np.int64, len(samples))
    values = np.fromiter((s.value for s in samples), np.float64, len(samples))
    bad = False
    outside = (ts < 0) | (ts > LATEST)  # answers carry times as Timestamps; a sample before the epoch is no metric
    if outside.any():
        i = int(np.argmax(outside))
        problems.append(f"{field}.samples[{i}].timestamp: {ts[i]} s is outside 1970-01-01 to 9999-12-31")
        bad = True
    if not np.isfinite(values).all():
        problems.append(f"{field}.samples[{int(np.argmin(np.isfinite(values)))}].value: must be finite")
        bad = True
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        i = int(np.argmin(np.diff(ts) > 0)) + 1
        problems.append(f"{field}.samples[{i}].timestamp: must be later than samples[{i - 1}] (oldest first)")
        bad = True
    return Series(np.empty(0, np.int64), np.empty(0)) if bad else Series(ts, values)


def duration(text: str, default: float, field: str, problems: list[str]) -> float:
    if not text:
        return default
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        problems.append(f"{field}: {e}")
        return 0.0
    if seconds <= 0:
        problems.append(f"{field}: {text!r} must be > 0")
    return seconds


def level(value: float, default: float, field: str, problems: list[str]) -> float:
    chosen = value or default
    if not 0 < chosen <= 0.98:
        problems.append(f"{field}: {value} must be in (0, 0.98]")
        return default
    return chosen


def forecast_points(points, level_: float, field: str, problems: list[str]) -> Forecast | None:
    """A caller's forecast (point, lower, upper per step, evenly spaced) as an engine Forecast."""
    if not points:
        return None
    if len(points) > MAX_HORIZON_STEPS:
        problems.append(f"{field}: {len(points)} points; at most {MAX_HORIZON_STEPS} allowed")
        return None
    ts = np.array([p.timestamp.seconds for p in points], dtype=np.int64)
    point, lower, upper = (np.array([getattr(p, k) for p in points], dtype=float) for k in ("value", "lower", "upper"))
    steps = np.diff(ts)
    if ts.size > 1 and (steps <= 0).any() | (steps != steps[0]).any():
        problems.append(f"{field}[].timestamp: must be evenly spaced, oldest first")
        return None
    if not (np.isfinite(point).all() and np.isfinite(lower).all() and np.isfinite(upper).all()):
        problems.append(f"{field}[]: value, lower and upper must be finite")
        return None
    if (lower > point).any() or (upper < point).any():
        i = int(np.argmax((lower > point) | (upper < point)))
        problems.append(f"{field}[{i}]: must have lower <= value <= upper")
        return None
    step = int(steps[0]) if ts.size > 1 else 300
    return Forecast.from_interval("given", int(ts[0]), step, point, lower, upper, level_)


def invalid(problems: list[str]) -> CallError:
    return CallError(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
