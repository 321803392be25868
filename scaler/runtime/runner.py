"""Model fits in worker processes, so a slow fit never stalls the gRPC event loop.

The pool is pebble's ProcessPool rather than concurrent.futures': a task past its time budget has its
worker process terminated and replaced (a ProcessPoolExecutor can only abandon a running task, and the
stuck process keeps its CPU and its slot), and a worker that dies fails only the task it was running
before a fresh worker takes its place.

Updates and cheap anomaly scores, which every workload asks for at every new sample, are handed to the
pool in batches: each hand-off costs about 0.4 ms of CPU (pickling, pebble's threads, the futures) against
1.5 ms for a baseline update itself. A call that finds no batch forming waits LINGER for others, and calls
wait in the event loop while every slot is busy; the next free slot takes all that waited (up to BATCH).
Refresh loops are jittered, so at a step boundary a replica's workloads find their new samples one by one
over a refresh interval: without the wait nearly every hand-off carried one call.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from helios.engine.anomaly import detector_class
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


BATCH = 64  # calls in one hand-off at most: an update takes milliseconds, far within any time budget
LINGER = 0.5  # seconds a batched call waits for others to join it (forecasts are made for minutes ahead)


@dataclass(frozen=True)
class _Queued:
    fn: Callable
    args: tuple
    timeout: float
    future: asyncio.Future


class ModelRunner:
    def __init__(self, workers: int, telemetry: Telemetry, initializer: Callable | None = None,
                 initargs: Iterable[Any] = (), linger: float = LINGER) -> None:
        """`initializer(*initargs)` runs in every worker process as it starts (e.g. to register a model)."""
        self._workers = workers
        self._linger = linger
        self._telemetry = telemetry
        # spawn, not fork: forking a process that runs gRPC threads is unsafe.
        self._pool = ProcessPool(workers, initializer=_start_worker, initargs=(initializer, tuple(initargs)),
                                 context=multiprocessing.get_context("spawn"))
        # Runs wait here, in the event loop, rather than in the pool's queue: thousands of workloads with a
        # new sample at the same step boundary would otherwise pickle thousands of histories at once, and
        # the pool's feeder threads would take the GIL from the gRPC handlers.
        self._slots = asyncio.Semaphore(2 * workers)
        self._queued: list[_Queued] = []  # batched calls waiting for a slot
        self._dispatcher: asyncio.Task | None = None
        self._sending: set[asyncio.Task] = set()
        self._settling = asyncio.Lock()

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
        return await self._run(model, "update", timeout, update_and_forecast, artifact, history, step, horizon,
                               batched=True)

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
        # Batched unless it fits a detector worth keeping (xgboost: seconds); the others refit in microseconds.
        cheap = artifact is not None or not detector_class(detector).keep_fitted
        return await self._run(detector, "detect", timeout, score_latest, detector, artifact, history, step, None,
                               likelihood_state, context, batched=cheap)

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

    async def _batched(self, fn: Callable, args: tuple, timeout: float) -> Any:
        """Run `fn(*args)` in a worker within a batch, with the same outcome as `call` would give it."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queued.append(_Queued(fn, args, timeout, future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch())
        return await future

    async def _dispatch(self) -> None:
        await asyncio.sleep(self._linger)
        while self._queued:
            await self._slots.acquire()
            batch = [q for q in self._queued[:BATCH] if not q.future.done()]  # not those whose caller left
            del self._queued[:BATCH]
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Queued]) -> None:
        """Run `batch` in one worker call (holding the slot the dispatcher took) and settle each caller.
        A caller that left meanwhile does not stop the others' batch (an unbatched call stops its worker)."""
        try:
            if len(batch) == 1:
                outcomes = [await _outcome(self._call(batch[0].fn, batch[0].args, batch[0].timeout))]
            else:
                try:
                    outcomes = await self._call(_run_all, ([(q.fn, q.args) for q in batch],),
                                                max(q.timeout for q in batch))
                except (FitTimeout, WorkerDied):  # a call hung or killed its worker: each again alone, so only it fails
                    outcomes = [await _outcome(self._call(q.fn, q.args, q.timeout)) for q in batch]
        except asyncio.CancelledError:
            for q in batch:
                q.future.cancel()
            raise
        except Exception as e:  # noqa: BLE001 - the pool closed, a batch that could not be pickled: every caller's
            outcomes = [(False, e)] * len(batch)
        finally:
            self._slots.release()
        async with self._settling:
            for q, (ok, value) in zip(batch, outcomes, strict=True):
                if q.future.done():
                    continue
                if ok:
                    q.future.set_result(value)
                else:
                    q.future.set_exception(value)
                # One caller resumes per turn of the event loop, of one batch at a time, so gRPC's calls are
                # served between them: a batch's 64 callers each publish and recommend when they resume.
                await asyncio.sleep(0)

    async def _run(self, model: str, operation: str, timeout: float, fn, *args, batched: bool = False) -> Fitted:
        started = time.perf_counter()
        try:
            result = await (self._batched(fn, args, timeout) if batched else self.call(fn, *args, timeout=timeout))
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


async def _outcome(call: Awaitable) -> tuple[bool, Any]:
    try:
        return True, await call
    except Exception as e:  # noqa: BLE001 - handed to the caller it belongs to
        return False, e


def _run_all(calls: list[tuple[Callable, tuple]]) -> list[tuple[bool, Any]]:
    """A batch in a worker: each call's result, or its exception, which fails only that call."""
    outcomes = []
    for fn, args in calls:
        try:
            outcomes.append((True, fn(*args)))
        except Exception as e:  # noqa: BLE001 - returned to its caller, raised there
            outcomes.append((False, e))
    return outcomes


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
