"""The slow path: per workload, on a schedule, fetch history, fit, forecast, publish a snapshot.

One asyncio task per workload, so there is never more than one refresh of a workload at a time,
however many calls arrive. Fetches run in threads (source client libraries block), fits in worker
processes (ModelRunner). A failed refresh keeps the last good snapshot and records the error; how
long that snapshot may still be served is decided when answering (state.answer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping

from helios.engine.artifacts import open_bundle
from helios.engine.errors import ArtifactError, HeliosError, InsufficientData, NoData, SourceError, SourceUnavailable
from helios.engine.types import Series

from ..config.metadata import TriggerSpec
from ..config.settings import Settings
from .artifact_store import ArtifactStore
from .cluster import Cluster
from .context import ContextFeed
from .insights import Insights
from .kept import KeptHistory
from .runner import ModelRunner
from .state import WorkloadKey, current_choice
from .telemetry import Telemetry
from .workloads import Workload, Workloads

log = logging.getLogger(__name__)


class Refresher:
    def __init__(
        self,
        workloads: Workloads,
        sources: Mapping[str, object],
        runner: ModelRunner,
        settings: Settings,
        telemetry: Telemetry,
        clock: Callable[[], float] = time.time,
        artifacts: ArtifactStore | None = None,
        insights: Insights | None = None,
        replay_runner: ModelRunner | None = None,
        context: ContextFeed | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self._insights = insights
        self._context = context
        self._cluster = cluster
        self._replay_runner = replay_runner or runner  # provisioning replays: by default beside the fits
        self._artifacts = artifacts
        self._workloads = workloads
        self._sources = sources
        self._runner = runner
        self._metrics = settings.metrics
        self._models = settings.models
        self._provisioning = settings.provisioning
        self._telemetry = telemetry
        self._clock = clock

    def touch(self, trigger: TriggerSpec) -> None:
        """Note a call for `trigger`; the first one registers the workload and starts its refresh loop.

        Synchronous and without awaits, so concurrent first calls cannot start two loops.
        """
        key = trigger.key
        if self._cluster is not None:
            self._cluster.asked(trigger)
            if not self._cluster.owns(key):
                return  # its owner refreshes it; this replica answers from the copy the owner publishes
        w = self._workloads.get(key)
        if w is None:
            w = self._workloads.add(trigger)
            w.task = asyncio.get_running_loop().create_task(self._run(key), name=f"refresh {'/'.join(key)}")
            if self._context is not None:
                self._context.start(key, w)
            log.info("workload registered", extra={"workload": "/".join(key), "source": trigger.source})
        elif (current := self._workloads.snapshot(key).trigger) is not trigger and current != trigger:  # edited
            self._workloads.publish(key, trigger=trigger)
            if self._context is not None and w.context_task is None:  # context turned on, say
                self._context.start(key, w)
        w.last_seen = self._clock()

    def adopt(self, trigger: TriggerSpec, state: dict, asked: float) -> None:
        """Start owning a workload another replica refreshed: its record from `state` (the last owner's,
        runtime/cluster.py), so the next refresh updates the fitted model instead of fitting afresh."""
        key = trigger.key
        w = self._workloads.add(trigger)
        for name, value in state.items():
            setattr(w, name, value)
        w.last_seen = asked
        w.task = asyncio.get_running_loop().create_task(self._run(key), name=f"refresh {'/'.join(key)}")
        if self._context is not None:
            self._context.start(key, w)
        log.info("workload adopted", extra={"workload": "/".join(key), "from_record": bool(state)})

    def release(self, key: WorkloadKey) -> None:
        """Another replica owns the workload now: stop refreshing it, keep its snapshot as a copy."""
        w = self._workloads.release(key)
        for task in w.tasks() if w is not None else ():
            task.cancel()
        log.info("workload handed on", extra={"workload": "/".join(key)})

    async def wait_for_first_refresh(self, key: WorkloadKey, timeout: float) -> None:
        """Wait, at most `timeout`, for the workload's first refresh to end (at once if it has); on a
        replica that does not own it, for the owner's first forecast to arrive."""
        w = self._workloads.get(key)
        if w is None and self._cluster is not None and timeout > 0:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                snap = self._workloads.snapshot(key)
                if snap is not None and snap.forecast is not None:
                    return
                await asyncio.sleep(0.05)
            return
        if w is not None and timeout > 0:
            try:
                await asyncio.wait_for(w.first_refresh.wait(), timeout)
            except TimeoutError:
                pass

    @property
    def tracked(self) -> int:
        return len(self._workloads)

    async def _run(self, key: WorkloadKey) -> None:
        w = self._workloads.get(key)
        try:
            while True:
                try:
                    await self.refresh(key)
                except Exception as e:  # a bug must not end the workload's refreshes: record it, go on
                    log.exception("refresh raised", extra={"workload": "/".join(key)})
                    self._fail(key, e, "fit_error")
                w.first_refresh.set()  # even on failure: waiters get the error now
                # +-25 %: workloads registered together (a KEDA restart, a deploy) drift apart instead of
                # all refreshing, and all updating at each new step, in the same second.
                await asyncio.sleep(self._metrics.refresh_interval * random.uniform(0.75, 1.25))
                if self._clock() - w.last_seen > self._metrics.idle_timeout and not await self._asked_elsewhere(w, key):
                    log.info("workload dropped after idle timeout", extra={"workload": "/".join(key)})
                    if self._cluster is not None:  # nobody asks any replica: out of the registry (not at shutdown)
                        self._cluster.forget(key)
                    break
        finally:
            if not w.released:  # handed to another replica: its snapshot stays as a copy
                self._workloads.drop(key)
            for task in (w.replay, w.insights, w.context_task):
                if task is not None:
                    task.cancel()

    async def _asked_elsewhere(self, w: Workload, key: WorkloadKey) -> bool:
        """Whether another replica was asked about the workload within idle_timeout (the cluster's registry
        says when each last was); when Redis cannot say, the workload is kept until it can."""
        if self._cluster is None:
            return False
        asked = await self._cluster.last_asked(key)
        if asked is None:
            return True
        w.last_seen = max(w.last_seen, asked)
        return self._clock() - w.last_seen <= self._metrics.idle_timeout

    async def refresh(self, key: WorkloadKey) -> None:
        """One refresh: publish the observed value as soon as it is fetched, the forecast after.

        The model is fitted when none is fitted yet, when the trigger's model or its parameters changed,
        or every `models.refit_interval`; otherwise the fitted model is only moved to the new data, and
        only when a new sample arrived since the last forecast.
        """
        snap, w = self._workloads.snapshot(key), self._workloads.get(key)
        trigger = snap.trigger
        started = time.perf_counter()
        now = self._clock()
        step = int(self._metrics.step)
        try:
            history = await self._fetch(w, trigger, now, step)
        except SourceError as e:
            self._fail(key, e, "source_error")
            return
        self._workloads.publish(key, observed=history.last_value(), data_end=history.end, refreshed_at=now,
                                last_error="", last_error_kind="", consecutive_failures=0)
        horizon = max(1, math.ceil(trigger.horizon / step))
        params = self._models.params_for(trigger.model, horizon, trigger.quantile)
        if self._artifacts is not None and (
                w.artifact is None or now - w.store_checked >= self._models.artifacts_poll_interval):
            w.store_checked = now
            adopted = await self._start_from_artifact(key, w, trigger, params, step)
        else:
            adopted = False
        refit = w.artifact is None or w.fitted_with != (trigger.model, params) or \
            now - w.fitted_at >= self._models.refit_interval
        if not refit and not adopted and snap.forecast is not None and (history.end, history.last_value()) == \
                (snap.data_end, snap.observed):
            self._telemetry.refreshes.labels(trigger.source, "ok").inc()
            return  # nothing new to forecast from
        timeout = self._models.fit_timeout
        try:
            if refit:
                fitted = await self._runner.fit(trigger.model, params, history, step, horizon, timeout)
                w.fitted_with, w.fitted_at = (trigger.model, params), now
            else:
                fitted = await self._runner.update(trigger.model, w.artifact, history, step, horizon, timeout)
        except Exception as e:  # the observed value stays served; the old forecast, if any, too
            self._fail(key, e, "fit_error")
            return
        w.artifact = fitted.artifact
        before = self._workloads.snapshot(key)
        self._workloads.publish(key, forecast=fitted.forecast, forecast_at=now, model_details=fitted.details,
                                fitted_at=w.fitted_at)
        self._telemetry.refreshes.labels(trigger.source, "ok").inc()
        self._telemetry.refresh_seconds.labels(trigger.source).observe(time.perf_counter() - started)
        if self._insights is not None:  # in a task of its own: never delays this or the next forecast
            self._insights.follow(w, before, history)
        if trigger.slo is not None and (refit or w.replayed_for != (trigger.slo, trigger.cluster)) and \
                (w.replay is None or w.replay.done()):  # in a task of its own too: the next refresh never waits
            w.replayed_for = (trigger.slo, trigger.cluster)
            w.replay = asyncio.get_running_loop().create_task(
                self._provision(key, trigger, params, history, step), name=f"replay {'/'.join(key)}")

    async def _provision(self, key: WorkloadKey, trigger: TriggerSpec, params: dict, history: Series,
                         step: int) -> None:
        """Choose how much to provision by replaying the workload's history, after its forecast is published:
        a replay that fails or lacks data never holds up serving; the last choice stays, and the note says why."""
        p = self._provisioning
        snap = self._workloads.snapshot(key)  # the caller just published this workload's snapshot
        last, previous = snap.provisioning, current_choice(snap, trigger)
        kept = "the last choice stays" if last is not None else f"serving the default quantile {trigger.quantile:g}"
        try:
            choice = await self._replay_runner.choose_provisioning(
                trigger.model, params, history, step, trigger.lead_time, trigger.slo, trigger.cluster, p.replay,
                p.min_replay, self._models.fit_timeout,
                previous.plan if previous is not None else None)
        except InsufficientData as e:
            choice, note = last, f"{e}; {kept}"
        except Exception as e:  # a timeout, a lost worker, a model that cannot backcast this history
            log.warning("provisioning replay failed", extra={"workload": "/".join(key), "error": str(e)})
            choice, note = last, f"replay failed: {e}; {kept}"
        else:
            note = ""
            log.info("provisioning chosen", extra={"workload": "/".join(key), "plan": choice.plan.label,
                                                   "attainable": choice.attainable, "reason": choice.reason})
        self._workloads.publish(key, provisioning=choice, provisioning_note=note)  # unless dropped meanwhile

    async def _start_from_artifact(self, key: WorkloadKey, w: Workload, trigger: TriggerSpec, params: dict,
                                   step: int) -> bool:
        """Adopt the newest complete trained model of this workload, when it is newer than the last one seen
        and trained as the trigger asks; otherwise say why in the log and keep the model there is.
        True when a model was adopted."""
        try:
            found = await asyncio.to_thread(self._artifacts.latest_complete, key, w.version)
            if found is None:
                return False
            version, files = found
            w.version = version  # judged once: a refused version is not read again at every poll
            _, manifest = await asyncio.to_thread(open_bundle, files)  # verifies hashes, format and model
        except (ArtifactError, OSError) as e:
            log.warning("refusing stored model; keeping the current one or fitting afresh",
                        extra={"workload": "/".join(key), "error": str(e)})
            return False
        trained = manifest["params"]
        if manifest["model"] != trigger.model or trained.get("step") != step or \
                any(trained.get(k) != v for k, v in params.items()):
            log.info("stored model was trained for other settings; fitting afresh",
                     extra={"workload": "/".join(key), "version": version, "model": manifest["model"]})
            return False
        w.artifact, w.fitted_with, w.fitted_at = files["model.json"], (trigger.model, params), manifest["trained_at"]
        metrics = json.loads(files.get("metrics.json", b"{}"))
        self._workloads.publish(key, model_version=version, backtest=metrics)
        log.info("adopted stored model", extra={"workload": "/".join(key), "version": version})
        return True

    async def _fetch(self, w: Workload, trigger: TriggerSpec, now: float, step: int) -> Series:
        """The history window up to `now`: its newest steps fetched and the rest kept from the last refresh
        (runtime/kept.py), or all of it fetched."""
        start, end = int(now - self._metrics.history), int(now)
        query = (trigger.source, trigger.source_params)
        since = None if w.kept is None else w.kept.tail_start(query, start, now, self._models.refit_interval, step)
        if since is None:
            w.kept = KeptHistory(await self._fetch_range(trigger, start, end, step), query, now)
        else:
            tail = await self._fetch_range(trigger, since, end, step)
            if not KeptHistory.has_sample_since(tail, since):  # not even the samples kept last time
                raise NoData(f"{trigger.source} returned no samples since {since} (Unix seconds)")
            w.kept = w.kept.extended(tail, since, start)
        history = w.kept.series
        if history.last_value() is None:
            w.kept = None
            raise NoData(f"{trigger.source} returned no samples in the last {self._metrics.history:g}s")
        return history

    async def _fetch_range(self, trigger: TriggerSpec, start: int, end: int, step: int) -> Series:
        source = self._sources[trigger.source]
        try:
            async with asyncio.timeout(self._metrics.fetch_timeout):  # no task of its own, as wait_for makes
                history = await asyncio.to_thread(source.fetch, trigger.source_params, start, end, step)
        except TimeoutError:
            limit = self._metrics.fetch_timeout
            raise SourceUnavailable(f"{trigger.source} did not answer within {limit:g}s") from None
        except SourceError:
            raise
        except Exception as e:  # a bug or an untyped library error: an outage, but loudly logged
            log.exception("metric source raised an untyped error", extra={"source": trigger.source})
            raise SourceUnavailable(f"{trigger.source}: {e.__class__.__name__}: {e}") from e
        if not isinstance(history, Series):  # a source bug: treated as an outage, never trusted
            raise SourceUnavailable(f"{trigger.source} returned {type(history).__name__}, not a Series")
        return history

    def _fail(self, key: WorkloadKey, error: Exception, result: str) -> None:
        snap = self._workloads.snapshot(key)
        kind = error.__class__.__name__ if isinstance(error, HeliosError) else "InternalError"
        message = str(error) or kind
        self._workloads.publish(key, last_error=message, last_error_kind=kind,
                                consecutive_failures=snap.consecutive_failures + 1)
        self._telemetry.refreshes.labels(snap.trigger.source, result).inc()
        if result == "source_error":
            self._telemetry.source_errors.labels(snap.trigger.source, kind).inc()
        log.warning(
            "refresh failed", extra={"workload": "/".join(key), "error_kind": kind, "error": message,
                                     "consecutive_failures": snap.consecutive_failures + 1},
        )

    async def close(self) -> None:
        tasks = [t for w in self._workloads.records() for t in w.tasks()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
