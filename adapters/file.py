"""`source: file`: a `timestamp,value` CSV on the scaler's disk (a mounted ConfigMap, a shared volume).

Timestamps are ISO-8601 (`2024-01-01T00:00:00Z`; no zone means UTC) or Unix seconds; an empty value
is a missing sample. With `replay: "true"` the trace loops against the wall clock (see replay.py);
otherwise its timestamps are taken as they are, so the file must be kept current by whoever writes it.
"""

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from helios.engine.align import align
from helios.engine.errors import BadQuery, InvalidSeries, NoData, SourceUnauthorized, SourceUnavailable
from helios.engine.types import Series

from .allow import Refused, inside_roots
from .replay import replay


@dataclass(frozen=True)
class FileParams:
    path: str
    replay: bool = False


class FileSettings(BaseModel):
    """Which folders a trigger's `path` may name. None listed (the default): `source: file` reads
    nothing in `helios serve`, so a ScaledObject cannot make Helios open a file of its choosing."""

    roots: list[str] = []


class FileSource:
    name: ClassVar[str] = "file"
    Params: ClassVar[type] = FileParams
    Settings: ClassVar[type[BaseModel]] = FileSettings

    def __init__(self, roots: Sequence[str] | None = None, **shared: Any) -> None:
        """`roots`: the folders paths must resolve inside; None admits any (the CLI tools read the
        operator's own files). `shared`: the keys every source section has (retries, step, gaps,
        queries); a local file is read once per refresh and served as written, so they do not apply."""
        self.roots = None if roots is None else list(roots)

    def admit(self, params: FileParams, namespace: str) -> None:
        inside_roots(params.path, self.roots)

    def fetch(self, params: FileParams, start: int, end: int, step: int) -> Series:
        try:  # again: a symlink may have changed since the trigger was admitted
            inside_roots(params.path, self.roots)
        except Refused as e:
            raise BadQuery(f"{params.path}: {e.reason}") from None
        trace = read_csv(params.path)
        if len(trace) == 0:
            raise NoData(f"{params.path}: no samples")
        if params.replay:
            return replay(align(trace, _median_step(trace, step)), start, end, step)
        window = trace.between(start, end)
        if len(window) == 0:
            raise NoData(f"{params.path}: no samples between {_iso(start)} and {_iso(end)}")
        return window


def read_csv(path: str) -> Series:
    """Parse a `timestamp,value` CSV (header required). Raises typed source errors, never OSError."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise SourceUnavailable(f"{path}: no such file") from None
    except PermissionError:
        raise SourceUnauthorized(f"{path}: permission denied") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise BadQuery(f"{path}: not a readable CSV file ({e.__class__.__name__})") from None
    except OSError as e:
        raise SourceUnavailable(f"{path}: {e.strerror}") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise BadQuery(f"{path}: line 1 must be the header 'timestamp,value'")
    pairs = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise BadQuery(f"{path}: line {line}: expected 2 columns, got {len(row)}")
        try:
            ts = _parse_timestamp(row[0])
            value = float(row[1]) if row[1].strip() else math.nan
        except ValueError as e:
            raise BadQuery(f"{path}: line {line}: {e}") from None
        if math.isinf(value):
            raise BadQuery(f"{path}: line {line}: value must be finite")
        pairs.append((ts, value))
    pairs.sort()
    deduped = [p for i, p in enumerate(pairs) if i + 1 == len(pairs) or pairs[i + 1][0] != p[0]]  # last wins
    try:
        return Series.from_pairs(deduped)
    except InvalidSeries as e:
        raise BadQuery(f"{path}: {e}") from None


def _parse_timestamp(text: str) -> int:
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO-8601 nor Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _median_step(trace: Series, default: int) -> int:
    if len(trace) < 2:
        return default
    diffs = sorted(int(d) for d in (trace.timestamps[1:] - trace.timestamps[:-1]))
    return diffs[len(diffs) // 2]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
