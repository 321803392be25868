"""From flagged steps to alerts: one alert when an excursion begins, not one on every step of it.

A detector flags each step whose severity (anomaly.base) is WARNING or worse. Flags come in bursts:
a spike echoes through the lags and windows of the steps after it, and a noisy stretch crosses
2.5 sigma several times in a row. An operator wants one alert per incident, so a flag that follows
the previous one within `quiet_steps` continues its excursion, and only an excursion's first flag
raises an alert; after `quiet_steps` steps without a flag the excursion is over. The per-step
severity is untouched (the recommender still maps it to ALERT_WARNING / ALERT_CRITICAL); this only
decides which flags are news.

`helios detect` and benchmarks/anomaly_detection.py judge every detector's alerts this way, so the
comparison stays fair."""

from __future__ import annotations

import numpy as np

# An hour at 5-minute steps, and the features' LOOKBACK: as long as a sample keeps echoing through
# the lags and rolling windows of the steps after it. Chosen from that, not from any labels.
QUIET_STEPS = 12


def excursions(flags: np.ndarray, quiet_steps: int = QUIET_STEPS) -> list[tuple[int, int]]:
    """(first, last) flagged index, inclusive, of each excursion: a flag with fewer than `quiet_steps`
    unflagged steps since the previous one continues its excursion. quiet_steps=0: every flag is one."""
    if quiet_steps < 0:
        raise ValueError(f"quiet_steps must be >= 0, got {quiet_steps}")
    idx = np.flatnonzero(np.asarray(flags, dtype=bool))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > quiet_steps)  # at least quiet_steps unflagged steps in between
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [idx.size - 1]])
    return [(int(idx[s]), int(idx[e])) for s, e in zip(starts, ends, strict=True)]


def alerts(flags: np.ndarray, quiet_steps: int = QUIET_STEPS) -> np.ndarray:
    """True at the first step of each excursion (see `excursions`), False elsewhere.

    Causal: whether step i raises an alert depends only on the flags at and before i.
    """
    flags = np.asarray(flags, dtype=bool)
    out = np.zeros(flags.shape, dtype=bool)
    for first, _ in excursions(flags, quiet_steps):
        out[first] = True
    return out


class AlertGate:
    """The streaming form of `alerts`: fed one step's severity at a time (anomaly.base.Severity), says
    whether that step raises an alert, from the state after the step before. State: the number of steps
    since the last flag (an int). `AlertGate().feed(sev)` over a series equals alerts(sev >= WARNING).

    A missing or unscored step is fed as Severity.NONE: quiet time passes in steps, as in `alerts`."""

    __slots__ = ("quiet_steps", "since_flag")

    def __init__(self, quiet_steps: int = QUIET_STEPS, since_flag: int | None = None) -> None:
        if quiet_steps < 0:
            raise ValueError(f"quiet_steps must be >= 0, got {quiet_steps}")
        self.quiet_steps = quiet_steps
        self.since_flag = since_flag  # unflagged steps since the last flag; None: no flag yet

    def feed(self, severity: int) -> bool:
        """True when this step raises an alert (its severity, WARNING or CRITICAL, is the alert's)."""
        if severity < 1:  # Severity.WARNING
            if self.since_flag is not None:  # capped: only "at least quiet_steps" matters
                self.since_flag = min(self.since_flag + 1, self.quiet_steps)
            return False
        news = self.since_flag is None or self.since_flag >= self.quiet_steps
        self.since_flag = 0
        return news
