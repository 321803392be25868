"""One record per workload, and the one writer of its snapshot.

A workload is what one ScaledObject trigger asks about: (namespace, name, metric name). Everything
Helios keeps about it between refreshes lives in its `Workload` record: the refresh task, the fitted
model, the provisioning replay, the anomaly detector and forecast ledger. What the handlers read is
its immutable Snapshot, which only `Workloads.publish` replaces.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd

from helios.engine.anomaly.alerts import AlertGate
from helios.engine.recommend import LastAction
from helios.engine.tracking import ForecastLedger
from helios.engine.types import Series

from ..config.metadata import ContextSpec, TriggerSpec
from .kept import KeptHistory
from .state import Answer, Snapshot, WorkloadKey, answer, serves_alike
from .store import SnapshotStore

if TYPE_CHECKING:
    from helios.engine.pipeline import Scored


@dataclass
class Workload:
    """What one workload's own tasks (its refresh loop, and the replay and insights runs it starts) keep
    between refreshes. Only those tasks change it, one at a time, on the event loop."""

    last_seen: float = 0.0
    task: asyncio.Task | None = None  # the refresh loop
    first_refresh: asyncio.Event = field(default_factory=asyncio.Event)
    # The fitted forecasting model, kept here (handlers never need it) for the next update.
    artifact: bytes | None = None
    fitted_with: tuple | None = None  # (model, params) of the artifact: a changed trigger means a new fit
    fitted_at: float = 0.0
    version: str = ""  # the newest stored version judged (adopted or refused), "" when none
    store_checked: float = -math.inf  # when the artifact store was last asked for a newer version
    # Provisioning replays.
    replayed_for: tuple | None = None  # (slo, cluster) of the last replay tried
    replay: asyncio.Task | None = None  # the replay under way, if any
    # Insights, after each forecast.
    insights: asyncio.Task | None = None  # the run under way, if any
    detector: bytes | None = None  # the fitted anomaly detector, refitted every anomaly.refit_interval
    detector_fitted_at: float = -math.inf
    detector_context: list[str] = field(default_factory=list)  # the context metrics it was fitted with
    likelihood: dict | None = None  # the anomaly likelihood's state after the last sample scored
    scored_at: int | None = None  # that sample's timestamp
    alerts: AlertGate = field(default_factory=AlertGate)  # one alert per incident
    history: Series | None = None  # the last history fetched, aligned (the admin API's Detect scores it)
    kept: KeptHistory | None = None  # the history window as fetched, extended at each refresh
    ledger: ForecastLedger | None = None  # the served forecasts, settled as their actuals arrive
    last_action: LastAction | None = None
    # Context (runtime/context.py): its own task, the frame it keeps, and whose pods that frame holds.
    context_task: asyncio.Task | None = None
    context_frame: pd.DataFrame | None = None
    context_spec: ContextSpec | None = None
    released: bool = False  # another replica owns it now: its tasks end without dropping the snapshot

    def tasks(self) -> list[asyncio.Task]:
        return [t for t in (self.task, self.replay, self.insights, self.context_task) if t is not None]

    def detector_due(self, now: float, refit_interval: float, context: list[str]) -> bool:
        """Whether the anomaly detector is to be fitted (again) before the next score: there is none, it
        is refit_interval old, or it was fitted on other context metrics than `context` (sorted names:
        it would read the missing columns as no data)."""
        return self.detector is None or now - self.detector_fitted_at >= refit_interval or \
            self.detector_context != context

    def take_score(self, scored: Scored, now: float, refitted: bool, context: list[str]) -> bool:
        """Keep what the newest sample's score carries to the next one (the detector, the likelihood's
        state) and say whether it raises an alert: each sample is judged once (a forecast made again
        from the same sample raises none), and an incident alerts once (AlertGate). The serving path and
        the simulator both come through here, so they alert alike."""
        if refitted:
            self.detector_fitted_at, self.detector_context = now, context
        self.detector, self.likelihood = scored.artifact, scored.likelihood_state
        new = self.scored_at is None or scored.timestamp > self.scored_at
        self.scored_at = scored.timestamp
        return new and self.alerts.feed(scored.severity)


class Workloads:
    """The workloads by key: their records, their snapshots in `store`, and the answers those give."""

    def __init__(self, store: SnapshotStore, staleness_limit: float) -> None:
        self.store = store
        self._staleness_limit = staleness_limit
        self._records: dict[WorkloadKey, Workload] = {}
        self._answers: dict[WorkloadKey, tuple[TriggerSpec, Snapshot, Answer]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: WorkloadKey) -> Workload | None:
        return self._records.get(key)

    def add(self, trigger: TriggerSpec) -> Workload:
        """Register a workload, with an empty snapshot until its first refresh (or, taken over from
        another replica, the last snapshot it published, which this one carries on from)."""
        record = self._records[trigger.key] = Workload()
        current = self.store.get(trigger.key)
        self.store.put(Snapshot(trigger) if current is None else replace(current, trigger=trigger))
        return record

    def release(self, key: WorkloadKey) -> Workload | None:
        """Stop keeping a workload's record (another replica owns it now); its snapshot stays as a copy."""
        self._answers.pop(key, None)
        record = self._records.pop(key, None)
        if record is not None:
            record.released = True
        return record

    def drop(self, key: WorkloadKey) -> Workload | None:
        self._answers.pop(key, None)
        self.store.remove(key)
        return self._records.pop(key, None)

    def records(self) -> list[Workload]:
        return list(self._records.values())

    def snapshot(self, key: WorkloadKey) -> Snapshot | None:
        return self.store.get(key)

    def snapshots(self) -> list[Snapshot]:
        return self.store.all()

    def publish(self, key: WorkloadKey, **changes) -> Snapshot | None:
        """The one writer: the workload's snapshot with `changes`, published whole as a new object.
        None, and nothing published, when the workload was dropped meanwhile."""
        current = self.store.get(key)
        if current is None or key not in self._records:
            return None
        snap = replace(current, **changes)
        self.store.put(snap)
        hit = self._answers.get(key)
        if hit is not None and hit[1] is current and serves_alike(current, changes):
            self._answers[key] = (hit[0], snap, hit[2])  # what it would serve is unchanged: keep the answer
        return snap

    def answer(self, trigger: TriggerSpec, now: float) -> Answer:
        """state.answer, remembered until the snapshot's answer or the lead window changes: KEDA and the
        HPA ask about each workload several times a minute, the answer moves once a step."""
        return self._remembered(trigger.key, trigger, self.store.get(trigger.key), now)

    def answer_of(self, snap: Snapshot, now: float) -> Answer:
        """state.answer for `snap` and its own trigger (the insights read what a snapshot serves), from
        the remembered answer when it is that snapshot's, and remembered when `snap` is the current one."""
        return self._remembered(snap.trigger.key, snap.trigger, snap, now)

    def _remembered(self, key: WorkloadKey, trigger: TriggerSpec, snap: Snapshot | None, now: float) -> Answer:
        hit = self._answers.get(key)
        if hit is not None and hit[0] is trigger and hit[1] is snap and now < hit[2].valid_until:
            return hit[2]
        result = answer(snap, trigger, now, self._staleness_limit)
        if snap is not None and snap is self.store.get(key):
            self._answers[key] = (trigger, snap, result)
        return result
