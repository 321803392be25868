"""Each workload's context: its pods' CPU and memory usage, requests and limits, its container's standard
metrics and, when the trigger names one, its database's, read by the workload's own source on its own
schedule. The first feed the resource rules; the others the anomaly detector's features.

One task per workload, beside its refresh loop, so a slow or failing context query never holds up the
load forecast, and GetMetrics never waits for one. Every `context.interval` (+-25 %, like the
refreshes) it reads what is new since its last fetch (the first one reads `context.window`), keeps the
last `context.window`, and publishes the result in the workload's snapshot (state.Context). The
insights run after each forecast reads it for the resource rules (INCREASE_MEMORY, DECREASE_CPU), and
the exporter for the helios_container_* gauges; a fetch that read something new has the workload's
recommendation made again at once (`on_update`), so the resource rules need not wait for a sample.

Failures never fail anything else: a fetch that raises, times out or finds no samples keeps what the
last good fetch read, says why in `Context.note` (the resource rules then say "not evaluated: ...,
<note>" when they lack data), and counts in helios_context_fetch_failures_total{source}. A source
that reads no container metrics (demo, file) has no context task at all.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pandas as pd

from helios.adapters.metrics import RESOURCE_METRICS
from helios.engine.errors import HeliosError, NoData
from helios.engine.features import METRICS, PRIMARY_METRIC
from helios.engine.types import Series

from ..config.metadata import ContextSpec
from ..config.settings import Settings
from .state import Context, WorkloadKey
from .telemetry import Telemetry
from .workloads import Workload, Workloads

log = logging.getLogger(__name__)
# The features' other metrics (engine.features.METRICS): the load fills the workload's own slot.
FEATURE_CONTEXT = tuple(m for m in METRICS if m != PRIMARY_METRIC)


def reads_context(source: object) -> bool:
    """Whether a source can read a workload's pods: it has the adapters' frames API and, when it maps
    metrics by query, a query for at least one of them (Azure's platform metrics have none)."""
    if not callable(getattr(source, "fetch_resource_metrics", None)):
        return False
    queries = getattr(source, "queries", None)
    return queries is None or any(key in queries for key in RESOURCE_METRICS)


class ContextFeed:
    def __init__(self, workloads: Workloads, sources: Mapping[str, object], settings: Settings,
                 telemetry: Telemetry, clock: Callable[[], float],
                 on_update: Callable[[WorkloadKey], None] | None = None) -> None:
        """`on_update(key)` runs after each fetch that read something new (the insights' reconsider)."""
        self._workloads = workloads
        self._on_update = on_update
        self._sources = sources
        self._settings = settings.context
        self._fetch_timeout = settings.metrics.fetch_timeout
        self._telemetry = telemetry
        self._clock = clock
        # Threads of their own, as many as fetches may run at once: thousands of workloads registering
        # together must neither wait on the threads the load refreshes fetch in, nor have their queue
        # time count against fetch_timeout.
        self._pool = ThreadPoolExecutor(settings.context.concurrency, thread_name_prefix="context")
        self._slots = asyncio.Semaphore(settings.context.concurrency)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def start(self, key: WorkloadKey, w: Workload) -> None:
        """Start the workload's context task, when its trigger and source have a context to read."""
        trigger = self._workloads.snapshot(key).trigger
        if not self._settings.enabled or trigger.context is None:
            return
        if not reads_context(self._sources[trigger.source]):
            why = f"source {trigger.source} reads no container metrics"
            self._workloads.publish(key, context=Context(None, note=why))
            return
        w.context_task = asyncio.get_running_loop().create_task(self._run(key), name=f"context {'/'.join(key)}")

    async def _run(self, key: WorkloadKey) -> None:
        while self._workloads.get(key) is not None:
            try:
                await self.fetch(key)
            except Exception:  # noqa: BLE001 - a bug here must not end the loop; it is logged
                log.exception("context fetch raised", extra={"workload": "/".join(key)})
            await asyncio.sleep(self._settings.interval * random.uniform(0.75, 1.25))

    async def fetch(self, key: WorkloadKey) -> Context | None:
        """One fetch of the workload's context, published in its snapshot (None: the workload is gone,
        or its trigger turned context off meanwhile)."""
        snap, w = self._workloads.snapshot(key), self._workloads.get(key)
        spec = snap.trigger.context if snap is not None else None
        if w is None or spec is None:
            return None
        source_name = snap.trigger.source
        now = self._clock()
        kept = w.context_frame if w.context_spec == spec else None  # other pods named: start afresh
        try:
            frame = await self._read(self._sources[source_name], spec, kept, now)
        except Exception as e:  # noqa: BLE001 - any failure degrades to the last good context, counted
            self._telemetry.context_failures.labels(source_name).inc()
            note = _failure(e, spec)
            if not isinstance(e, HeliosError):
                log.warning("context fetch failed", extra={"workload": "/".join(key), "error": note})
            frame = kept
        else:
            note = ""
            frame = _merged(kept, frame, now - self._settings.window)
            w.context_frame, w.context_spec = frame, spec
        fetched_at = now if not note else (snap.context.fetched_at if snap.context is not None else None)
        context = _context(frame, fetched_at, note)
        self._workloads.publish(key, context=context)
        if not note and self._on_update is not None:
            self._on_update(key)
        return context

    async def _read(self, source: object, spec: ContextSpec, kept: pd.DataFrame | None, now: float) -> pd.DataFrame:
        window = self._settings.window
        if kept is not None and len(kept):  # only what is new, from the last (perhaps partial) step on
            window = min(window, now - int(kept.index[-1].timestamp()))
        read = partial(_read_frames, source, spec, window / 3600, now)
        async with self._slots:
            try:
                return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._pool, read),
                                              self._fetch_timeout)
            except TimeoutError:
                raise TimeoutError(f"no answer within {self._fetch_timeout:g}s") from None


def _read_frames(source: object, spec: ContextSpec, hours: float, end: float) -> pd.DataFrame:
    """The pods' resource frame beside the container frame and, when the trigger names one, the
    database's: one frame of columns on one grid. A frame with no samples is left out; NoData only
    when none has any (the resource frame's message, which names the pods)."""
    reads = [partial(source.fetch_resource_metrics, spec.namespace, hours, workload=spec.workload, end=end)]
    if callable(getattr(source, "fetch_container_metrics", None)):
        reads.append(partial(source.fetch_container_metrics, spec.namespace, hours, workload=spec.workload, end=end))
    if spec.database and callable(getattr(source, "fetch_database_metrics", None)):
        reads.append(partial(source.fetch_database_metrics, spec.database, hours, end=end))
    frames, first_error = [], None
    for read in reads:
        try:
            frames.append(read())
        except NoData as e:
            first_error = first_error or e
    if not frames:
        raise first_error
    return pd.concat(frames, axis=1)


def _merged(kept: pd.DataFrame | None, new: pd.DataFrame, since: float) -> pd.DataFrame:
    """`new` after `kept`, a step both hold taken from `new` (the later, complete reading), trimmed to
    the steps at or after `since`."""
    frame = new if kept is None else pd.concat([kept, new])
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame[frame.index >= pd.Timestamp(since, unit="s", tz="UTC")]


def _context(frame: pd.DataFrame | None, fetched_at: float | None, note: str) -> Context:
    if frame is None or frame.empty:
        return Context(fetched_at=fetched_at, note=note)
    grid = frame.index.as_unit("s").asi8.astype(np.int64)

    def usage(column: str) -> Series | None:
        if column not in frame:
            return None
        values = frame[column].to_numpy(dtype=float)
        present = np.isfinite(values)
        return Series(grid[present], values[present]) if present.any() else None

    def latest(column: str) -> float | None:
        if column not in frame:
            return None
        values = frame[column].to_numpy(dtype=float)
        present = values[np.isfinite(values) & (values > 0)]
        return float(present[-1]) if present.size else None

    features = {name: s for name in FEATURE_CONTEXT if name in frame and (s := usage(name)) is not None}
    return Context(
        fetched_at=fetched_at, cpu_usage=usage("pod_cpu_cores"), memory_usage=usage("pod_memory_bytes"),
        features=features,
        cpu_request=latest("pod_cpu_request_cores"), cpu_limit=latest("pod_cpu_limit_cores"),
        memory_request=latest("pod_memory_request_bytes"), memory_limit=latest("pod_memory_limit_bytes"),
        note=note,
    )


def _failure(error: Exception, spec: ContextSpec) -> str:
    """The reason a fetch gave nothing, as the resource rules quote it."""
    if isinstance(error, NoData):
        return f"context: no pods of workload {spec.workload!r} in namespace {spec.namespace!r} have samples ({error})"
    message = str(error) or error.__class__.__name__
    return f"context fetch failed: {message}"
