"""Markdown tables and timestamps for the measuring commands' output."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime


def markdown_table(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """One row per dict, the given columns in order; floats to 4 significant digits."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def utc_iso(ts) -> str:
    """A Unix timestamp as ISO 8601 in UTC to the second, e.g. 2024-01-01T00:05:00Z."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
