"""The history window a workload's refreshes read, kept between them so that only its newest steps are fetched.

Each new sample's refresh needs the whole window (`metrics.history`, 7 days by default: 2,016 steps at
5 minutes), of which one step is new. A range query answers each step on its own (Prometheus evaluates
query_range at every step independently; the cloud sources align each point over its own period), so
the window can be kept and extended: each refresh asks for the steps since the last sample kept, plus
REFETCH_STEPS before it, which a source may still revise (a late scrape, a rate over samples still
arriving). The whole window is fetched again at the first refresh, when the trigger's query changes,
and every refetch interval, so that an older revision is never kept longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helios.engine.types import Series

REFETCH_STEPS = 3


@dataclass(frozen=True, eq=False)
class KeptHistory:
    series: Series  # the window as the last refresh read it
    query: tuple  # (source, its params) it was fetched with
    whole_at: float  # when the whole window was last fetched

    def tail_start(self, query: tuple, start: int, now: float, refetch_interval: float, step: int) -> int | None:
        """Where the next fetch of the window [start, now] begins, or None: fetch the whole window (another
        query, a refetch due, or nothing kept within the window)."""
        end = self.series.end
        if query != self.query or now - self.whole_at >= refetch_interval or end is None or end < start:
            return None
        return max(start, end - REFETCH_STEPS * step)

    @staticmethod
    def has_sample_since(tail: Series, since: int) -> bool:
        return bool((~np.isnan(tail.values[np.searchsorted(tail.timestamps, since):])).any())

    def extended(self, tail: Series, since: int, start: int) -> KeptHistory:
        """The window from `start` on: `tail`'s samples from `since` on (it must have one), after the kept
        ones before the first of them. A source leaves out the steps without a value at the start of its
        answer, where a gap reaching back before `since` keeps what the whole window said of them."""
        old, new = self.series, tail
        rest = int(np.searchsorted(new.timestamps, since))  # a source may answer more than was asked
        first = new.timestamps[rest]
        head = slice(int(np.searchsorted(old.timestamps, start)), int(np.searchsorted(old.timestamps, first)))
        if head.start == 0 and np.array_equal(old.timestamps[head.stop:], new.timestamps[rest:]) and \
                np.array_equal(old.values[head.stop:], new.values[rest:], equal_nan=True):
            return self  # nothing new (most refreshes): the same window, not a copy beside the models' one
        series = Series.of_valid(np.concatenate((old.timestamps[head], new.timestamps[rest:])),
                                 np.concatenate((old.values[head], new.values[rest:])))
        return KeptHistory(series, self.query, self.whole_at)
