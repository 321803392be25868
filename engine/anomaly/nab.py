"""How well a detector's flags match labelled anomaly windows: event-level precision/recall/F1, and
the score of the Numenta Anomaly Benchmark (NAB).

Inputs everywhere: step timestamps, one boolean detection per step, and windows as inclusive
[start, end] timestamp pairs. A window holding no timestamp is ignored. `probation` leading steps
are not scored (NAB leaves the first 15% of a file, at most 750 steps, to the detector to learn):
detections in them are dropped and a window wholly inside them is not counted.

Event level
    A window is detected if any detection falls in it. Consecutive detections outside every window
    form one false-positive event, so a detector that stays on for an hour is one false alarm, not
    twelve. precision = detected / (detected + false-positive events), recall = detected / windows,
    F1 = 2 detected / (2 detected + false-positive events + missed windows), which is their harmonic
    mean and is also 0, not undefined, for false alarms on a series without windows. 0/0 is NaN.

NAB score (numenta/NAB: nab/sweeper.py, config/profiles.json, nab/runner.py's normalize step)
    Unlike the event level, NAB counts every detected step on its own, as NAB does.
    - sigma(y) = 2 / (1 + exp(5 y)) - 1, and -1 for y > 3: +0.987 at y = -1, 0 at y = 0, -0.987 at y = 1.
    - A window of w steps ending at index e, first detected at index i, earns
      A_tp * sigma(-(e - i + 1) / w) / sigma(-1): exactly A_tp for a detection at its first step,
      less the later it comes. Only that first detection counts; a window never detected costs -A_fn.
    - A detection outside every window at index i costs A_fp * sigma((i - e) / (w - 1)), where e and w
      belong to the closest window ending before i: nearly nothing just after a window, the full
      -A_fp from three window-widths on, and -A_fp outright when no window precedes it.
    - Standard profile: A_tp = 1, A_fp = 0.11, A_fn = 1 (true negatives weigh 0); reward_low_FP_rate
      A_fp = 0.22; reward_low_FN_rate A_fn = 2 (A_fp stays 0.11, as in NAB's profiles.json).
    - normalized = 100 (raw - null) / (perfect - null): null is a detector that flags nothing
      (-A_fn per window), perfect one that flags each window's first step (A_tp per window). Over a
      corpus, raw, null and perfect are summed over files first (NabScore.__add__), as NAB does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Windows = Sequence[tuple[int, int]] | Sequence[Sequence[int]]


@dataclass(frozen=True)
class Profile:
    """NAB's weights of a true positive, a false positive and a false negative (an application profile)."""

    tp: float
    fp: float
    fn: float


# NAB's config/profiles.json (weights as costs; normalisation per profile, as above).
STANDARD = Profile(tp=1.0, fp=0.11, fn=1.0)
REWARD_LOW_FP = Profile(tp=1.0, fp=0.22, fn=1.0)  # "reward_low_FP_rate": a false alarm costs twice as much
REWARD_LOW_FN = Profile(tp=1.0, fp=0.11, fn=2.0)  # "reward_low_FN_rate": a miss costs twice as much
PROFILES = {"standard": STANDARD, "reward_low_FP_rate": REWARD_LOW_FP, "reward_low_FN_rate": REWARD_LOW_FN}
PROBATION_FRACTION = 0.15  # NAB's probationary period: the first 15% of a file ...
PROBATION_MAX_STEPS = 750  # ... but never more than 0.15 x 5000 steps


def probation_steps(n: int, fraction: float = PROBATION_FRACTION) -> int:
    """NAB's probationary period of an n-step series: floor(fraction * n), at most fraction * 5000."""
    return int(min(math.floor(fraction * n), fraction * 5000))


def scaled_sigmoid(position: float) -> float:
    """NAB's reward for a detection at `position` window-widths relative to a window's end (see module doc)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices, inclusive, of each run of consecutive True values."""
    m = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def window_spans(timestamps: np.ndarray, windows: Windows) -> list[tuple[int, int]]:
    """Index range (first, last), inclusive, of each window's steps, in time order; empty windows dropped."""
    ts = np.asarray(timestamps)
    spans = []
    for start, end in sorted((s, e) for s, e in windows):
        first = int(np.searchsorted(ts, start, side="left"))
        last = int(np.searchsorted(ts, end, side="right")) - 1
        if last >= first:
            spans.append((first, last))
    return spans


@dataclass(frozen=True)
class EventCounts:
    windows: int  # scored windows
    detected: int  # windows with at least one detection
    false_positives: int  # runs of detections outside every window

    @property
    def precision(self) -> float:
        return _ratio(self.detected, self.detected + self.false_positives)

    @property
    def recall(self) -> float:
        return _ratio(self.detected, self.windows)

    @property
    def f1(self) -> float:
        missed = self.windows - self.detected
        return _ratio(2 * self.detected, 2 * self.detected + self.false_positives + missed)

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(
            self.windows + other.windows, self.detected + other.detected, self.false_positives + other.false_positives
        )


@dataclass(frozen=True)
class NabScore:
    raw: float
    null: float  # what a detector that flags nothing scores
    perfect: float  # what a detector that flags each window's first step scores

    @property
    def normalized(self) -> float:
        """0 for flagging nothing, 100 for perfect; negative when false alarms cost more than hits earn.
        NaN without windows (nothing to normalise by)."""
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span > 0 else math.nan

    def __add__(self, other: NabScore) -> NabScore:
        return NabScore(self.raw + other.raw, self.null + other.null, self.perfect + other.perfect)


def event_counts(timestamps: np.ndarray, detections: np.ndarray, windows: Windows, probation: int = 0) -> EventCounts:
    flags, spans, inside = _prepare(timestamps, detections, windows, probation)
    scored = [(a, b) for a, b in spans if b >= probation]
    detected = sum(bool(flags[a : b + 1].any()) for a, b in scored)
    return EventCounts(len(scored), detected, len(runs(flags & ~inside)))


def nab_score(
    timestamps: np.ndarray, detections: np.ndarray, windows: Windows, profile: Profile = STANDARD, probation: int = 0
) -> NabScore:
    flags, spans, inside = _prepare(timestamps, detections, windows, probation)
    scored = [(a, b) for a, b in spans if b >= probation]
    earliest = scaled_sigmoid(-1.0)
    raw = 0.0
    for a, b in scored:
        hits = np.flatnonzero(flags[a : b + 1])
        if hits.size:
            first, width = a + int(hits[0]), b - a + 1
            raw += profile.tp * scaled_sigmoid(-(b - first + 1) / width) / earliest
        else:
            raw -= profile.fn
    # Every window, probationary ones included, is a "preceding window" for the false positives after it.
    ends = np.array([b for _, b in spans], dtype=np.int64)
    widths = np.array([b - a + 1 for a, b in spans], dtype=np.int64)
    for i in np.flatnonzero(flags & ~inside):
        k = int(np.searchsorted(ends, i, side="left")) - 1  # last window ending before i
        if k < 0:
            raw -= profile.fp
        else:
            raw += profile.fp * scaled_sigmoid((i - ends[k]) / max(int(widths[k]) - 1, 1))
    return NabScore(raw=raw, null=-profile.fn * len(scored), perfect=profile.tp * len(scored))


def _prepare(
    timestamps: np.ndarray, detections: np.ndarray, windows: Windows, probation: int
) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    flags = np.asarray(detections, dtype=bool).copy()
    if flags.shape != np.shape(timestamps):
        raise ValueError(f"detections {flags.shape} and timestamps {np.shape(timestamps)} differ in shape")
    flags[: max(0, probation)] = False
    spans = window_spans(timestamps, windows)
    inside = np.zeros(flags.size, dtype=bool)
    for a, b in spans:
        inside[a : b + 1] = True
    return flags, spans, inside


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan
