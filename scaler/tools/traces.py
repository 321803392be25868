"""Trace files for the measuring commands and the benchmarks: which CSVs a path list names, and the
grid a trace is forecast on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helios.engine.types import Series


def csv_files(paths: Sequence[str], every_folder: bool = False) -> list[Path]:
    """The CSV files named, and those directly inside the folders named, in order. An error when there
    are none, or with `every_folder`, when any folder named holds none (helios detect: each file is judged)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found and every_folder:
                raise ValueError(f"{p}: no .csv files in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"{p}: no such file or folder")
    if not files:
        raise ValueError(f"no .csv files in {', '.join(paths)}")
    return files


def native_step(trace: Series) -> int:
    """The most common sampling step of a trace: a 30-minute or daily series is forecast on its own
    grid, not on an interpolated 5-minute one."""
    if len(trace) < 2:
        return 300
    steps, counts = np.unique(np.diff(trace.timestamps), return_counts=True)
    return int(steps[counts.argmax()])
