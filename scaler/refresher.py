"""The slow path: per workload, on a schedule, fetch history, fit, forecast, publish a snapshot.

One asyncio task per workload, so there is never more than one refresh of a workload at a time,
however many calls arrive. Fetches run in threads (source client libraries block), fits in worker
processes (ModelRunner). A failed refresh keeps the last good snapshot and records the error; how
long that snapshot may still be served is decided when answering (state.answer).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from helios.engine.errors import HeliosError, NoData, SourceError, SourceUnavailable

from .metadata import TriggerSpec
from .runner import ModelRunner
from .settings import Settings
from .state import Snapshot, StateStore, WorkloadKey
from .telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class _Workload:
    task: asyncio.Task | None = None
    last_seen: float = 0.0
    first_refresh: asyncio.Event = field(default_factory=asyncio.Event)


class Refresher:
    def __init__(
        self,
        store: StateStore,
        sources: Mapping[str, object],
        runner: ModelRunner,
        settings: Settings,
        telemetry: Telemetry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sources = sources
        self._runner = runner
        self._metrics = settings.metrics
        self._models = settings.models
        self._telemetry = telemetry
        self._clock = clock
        self._workloads: dict[WorkloadKey, _Workload] = {}

    def touch(self, trigger: TriggerSpec) -> None:
        """Note a call for `trigger`; the first one registers the workload and starts its refresh loop.

        Synchronous and without awaits, so concurrent first calls cannot start two loops.
        """
        key = trigger.key
        w = self._workloads.get(key)
        if w is None:
            w = self._workloads[key] = _Workload()
            self._store.put(Snapshot(trigger))
            w.task = asyncio.get_running_loop().create_task(self._run(key), name=f"refresh {'/'.join(key)}")
            log.info("workload registered", extra={"workload": "/".join(key), "source": trigger.source})
        else:
            snap = self._store.get(key)
            if snap is not None and snap.trigger != trigger:  # the ScaledObject was edited
                self._store.put(snap.with_trigger(trigger))
        w.last_seen = self._clock()

    async def wait_for_first_refresh(self, key: WorkloadKey, timeout: float) -> None:
        """Wait, at most `timeout`, for the workload's first refresh to end (at once if it has)."""
        w = self._workloads.get(key)
        if w is not None and timeout > 0:
            try:
                await asyncio.wait_for(w.first_refresh.wait(), timeout)
            except TimeoutError:
                pass

    @property
    def tracked(self) -> int:
        return len(self._workloads)

    async def _run(self, key: WorkloadKey) -> None:
        try:
            while True:
                await self.refresh(key)
                self._workloads[key].first_refresh.set()  # even on failure: waiters get the error now
                await asyncio.sleep(self._metrics.refresh_interval)
                if self._clock() - self._workloads[key].last_seen > self._metrics.idle_timeout:
                    log.info("workload dropped after idle timeout", extra={"workload": "/".join(key)})
                    break
        finally:
            self._workloads.pop(key, None)
            self._store.remove(key)

    async def refresh(self, key: WorkloadKey) -> None:
        """One refresh: publish the observed value as soon as it is fetched, the forecast after."""
        snap = self._store.get(key)
        trigger = snap.trigger
        started = time.perf_counter()
        now = self._clock()
        step = int(self._metrics.step)
        try:
            history = await self._fetch(trigger, now, step)
        except SourceError as e:
            self._fail(key, e, "source_error")
            return
        observed = history.last_value()
        self._store.put(replace(
            self._store.get(key), observed=observed, data_end=history.end, refreshed_at=now,
            last_error="", last_error_kind="", consecutive_failures=0,
        ))
        try:
            horizon = max(1, math.ceil(trigger.horizon / step))
            forecast = await self._runner.forecast(
                trigger.model, self._models.params_for(trigger.model), history, step, horizon,
                self._models.fit_timeout,
            )
        except Exception as e:  # the observed value stays served; the old forecast, if any, too
            self._fail(key, e, "fit_error")
            return
        self._store.put(replace(self._store.get(key), forecast=forecast, forecast_at=now))
        self._telemetry.refreshes.labels(trigger.source, "ok").inc()
        self._telemetry.refresh_seconds.labels(trigger.source).observe(time.perf_counter() - started)

    async def _fetch(self, trigger: TriggerSpec, now: float, step: int):
        source = self._sources[trigger.source]
        start = int(now - self._metrics.history)
        try:
            history = await asyncio.wait_for(
                asyncio.to_thread(source.fetch, trigger.source_params, start, int(now), step),
                self._metrics.fetch_timeout,
            )
        except TimeoutError:
            limit = self._metrics.fetch_timeout
            raise SourceUnavailable(f"{trigger.source} did not answer within {limit:g}s") from None
        except SourceError:
            raise
        except Exception as e:  # a bug or an untyped library error: an outage, but loudly logged
            log.exception("metric source raised an untyped error", extra={"source": trigger.source})
            raise SourceUnavailable(f"{trigger.source}: {e.__class__.__name__}: {e}") from e
        if history.last_value() is None:
            raise NoData(f"{trigger.source} returned no samples in the last {self._metrics.history:g}s")
        return history

    def _fail(self, key: WorkloadKey, error: Exception, result: str) -> None:
        snap = self._store.get(key)
        kind = error.__class__.__name__ if isinstance(error, HeliosError) else "InternalError"
        message = str(error) or kind
        self._store.put(replace(
            snap, last_error=message, last_error_kind=kind, consecutive_failures=snap.consecutive_failures + 1,
        ))
        self._telemetry.refreshes.labels(snap.trigger.source, result).inc()
        if result == "source_error":
            self._telemetry.source_errors.labels(snap.trigger.source, kind).inc()
        log.warning(
            "refresh failed", extra={"workload": "/".join(key), "error_kind": kind, "error": message,
                                     "consecutive_failures": snap.consecutive_failures + 1},
        )

    async def close(self) -> None:
        tasks = [w.task for w in self._workloads.values() if w.task]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
