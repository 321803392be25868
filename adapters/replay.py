"""Play a recorded trace against the wall clock, looping, so old data looks like live data."""

import numpy as np

from helios.engine.types import Series


def replay(trace: Series, start: int, end: int, step: int) -> Series:
    """Samples of `trace` on the grid of multiples of `step` within [start, end], wrapped in time.

    The trace repeats every len(trace) * its own step; wall-clock time t reads the trace at
    trace.start + (t - trace.start) mod period, so a trace that starts on a Monday at 00:00 UTC and
    spans whole weeks keeps its time of day and day of week. Values between samples are interpolated.
    """
    ts, vs = trace.timestamps, trace.values
    trace_step = int(ts[1] - ts[0]) if ts.size > 1 else step
    period = int(ts[-1] - ts[0]) + trace_step
    grid = np.arange(-(-start // step) * step, end + 1, step, dtype=np.int64)
    phase = (grid - ts[0]) % period
    # Append the first sample one period later so interpolation wraps from the end to the start.
    values = np.interp(phase, np.append(ts - ts[0], period), np.append(vs, vs[0]))
    return Series(grid, values)
