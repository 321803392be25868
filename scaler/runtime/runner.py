"""Model fits in worker processes, so a slow fit never stalls the gRPC event loop.

The pool is pebble's ProcessPool rather than concurrent.futures': a task past its time budget has its
worker process terminated and replaced (a ProcessPoolExecutor can only abandon a running task, and the
stuck process keeps its CPU and its slot), and a worker that dies fails only the task it was running
before a fresh worker takes its place.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool

from helios.engine.demand import Provisioning
from helios.engine.errors import HeliosError
from helios.engine.pipeline import (
    Fitted,
    Scored,
    choose_provisioning,
    fit_and_forecast,
    score_latest,
    update_and_forecast,
)
from helios.engine.replay.loop import Cluster
from helios.engine.replay.provision import SLO, Choice
from helios.engine.types import Series

from .telemetry import Telemetry

log = logging.getLogger(__name__)


class FitTimeout(HeliosError):
    """A fit or update ran past models.fit_timeout; its worker process was killed."""


class WorkerDied(HeliosError):
    """The worker process running a fit exited abnormally (killed, out of memory, a crash)."""


class ModelRunner:
    def __init__(self, workers: int, telemetry: Telemetry, initializer: Callable | None = None,
                 initargs: Iterable[Any] = ()) -> None:
        """`initializer(*initargs)` runs in every worker process as it starts (e.g. to register a model)."""
        self._workers = workers
        self._telemetry = telemetry
        # spawn, not fork: forking a process that runs gRPC threads is unsafe.
        self._pool = ProcessPool(workers, initializer=_start_worker, initargs=(initializer, tuple(initargs)),
                                 context=multiprocessing.get_context("spawn"))
        # Runs wait here, in the event loop, rather than in the pool's queue: thousands of workloads with a
        # new sample at the same step boundary would otherwise pickle thousands of histories at once, and
        # the pool's feeder threads would take the GIL from the gRPC handlers.
        self._slots = asyncio.Semaphore(2 * workers)

    async def warm_up(self) -> None:
        """Start the workers now, so the first refresh does not pay for their imports."""
        await asyncio.gather(*(self.call(_noop, timeout=120) for _ in range(self._workers)))

    async def worker_pids(self) -> set[int]:
        """Process ids of the workers (for fault tests and diagnostics)."""
        return set(await asyncio.gather(*(self.call(_pid, timeout=60) for _ in range(self._workers))))

    async def fit(
        self, model: str, params: dict[str, Any], history: Series, step: int, horizon: int, timeout: float
    ) -> Fitted:
        """Fit `model` on `history` in a worker and forecast `horizon` steps."""
        return await self._run(model, "fit", timeout, fit_and_forecast, model, params, history, step, horizon)

    async def update(
        self, model: str, artifact: bytes, history: Series, step: int, horizon: int, timeout: float
    ) -> Fitted:
        """Move a fitted model to the newest `history` in a worker (no refit) and forecast."""
        return await self._run(model, "update", timeout, update_and_forecast, artifact, history, step, horizon)

    async def choose_provisioning(self, model: str, params: dict[str, Any], history: Series, step: int, lead: float,
                                  slo: SLO, cluster: Cluster, replay: float, min_replay: float, timeout: float,
                                  previous: Provisioning | None = None) -> Choice:
        """Replay the workload's recent history in a worker to choose how much to provision."""
        return await self._run(model, "replay", timeout, choose_provisioning, model, params, history, step, lead, slo,
                               cluster, replay, min_replay, previous)

    async def score(self, detector: str, artifact: bytes | None, history: Series, step: int, timeout: float,
                    likelihood_state: dict | None = None, context: dict[str, Series] | None = None) -> Scored:
        """Anomaly score of the newest sample in a worker: with the saved detector, or fitting one;
        `context` (the workload's other metrics) fills the features that read them."""
        return await self._run(detector, "detect", timeout, score_latest, detector, artifact, history, step, None,
                               likelihood_state, context)

    async def call(self, fn: Callable, *args, timeout: float) -> Any:
        """Run `fn(*args)` in a worker; the worker is killed and replaced if it takes longer than `timeout`."""
        async with self._slots:
            return await self._call(fn, args, timeout)

    async def _call(self, fn: Callable, args: tuple, timeout: float) -> Any:
        future = self._pool.schedule(fn, args, timeout=timeout)
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            raise FitTimeout(f"exceeded {timeout:g}s; the worker was stopped") from None
        except ProcessExpired as e:
            raise WorkerDied(f"worker process {e.pid} exited with code {e.exitcode}; a new one replaces it") from None
        except asyncio.CancelledError:
            future.cancel()  # pebble stops the worker if the task already started
            raise

    async def _run(self, model: str, operation: str, timeout: float, fn, *args) -> Fitted:
        started = time.perf_counter()
        try:
            result = await self.call(fn, *args, timeout=timeout)
        except (FitTimeout, WorkerDied) as e:
            log.error("model worker lost", extra={"model": model, "operation": operation, "error": str(e)})
            raise type(e)(f"{model} {operation}: {e}") from None
        elapsed = time.perf_counter() - started
        self._telemetry.fit_seconds.labels(model, operation).observe(elapsed)
        log.debug("model run", extra={"model": model, "operation": operation, "seconds": round(elapsed, 4)})
        return result

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=5)


WORKER_NICENESS = 10


def _start_worker(initializer: Callable | None, initargs: tuple) -> None:
    # Fits yield the CPU to the serving process: on a busy replica, GetMetrics' latency matters more than
    # how soon a background fit or update finishes.
    os.nice(WORKER_NICENESS)
    if initializer is not None:
        initializer(*initargs)


def _noop() -> None:
    pass


def _pid() -> int:
    time.sleep(0.2)  # hold this worker so each call of worker_pids lands on a different one
    return os.getpid()
