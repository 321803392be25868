"""Model fits in worker processes, so a slow fit never stalls the gRPC event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from helios.engine.pipeline import Fitted, fit_and_forecast, update_and_forecast
from helios.engine.types import Series

from .telemetry import Telemetry

log = logging.getLogger(__name__)


class FitTimeout(Exception):
    pass


class ModelRunner:
    def __init__(self, workers: int, telemetry: Telemetry) -> None:
        self._workers = workers
        self._telemetry = telemetry
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs gRPC threads is unsafe.
        return ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))

    async def warm_up(self) -> None:
        """Start the workers now, so the first refresh does not pay for their imports."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _noop) for _ in range(self._workers)))

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

    async def _run(self, model: str, operation: str, timeout: float, fn, *args) -> Fitted:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(loop.run_in_executor(self._pool, fn, *args), timeout)
        except TimeoutError:
            raise FitTimeout(f"{model} {operation} exceeded {timeout:g}s") from None
        except BrokenProcessPool:
            log.error("model worker died; starting a new pool", extra={"model": model})
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise
        self._telemetry.fit_seconds.labels(model, operation).observe(time.perf_counter() - started)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _noop() -> None:
    pass
