"""Markdown tables for the measuring commands' `--format table`."""

from collections.abc import Iterable, Sequence


def markdown_table(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """One row per dict, the given columns in order; floats to 4 significant digits."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
