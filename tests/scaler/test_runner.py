"""The model runner's batches: the calls waiting together go to a worker as one, with the outcome each
would have had alone."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from helios.engine.pipeline import fit_and_forecast, score_latest, update_and_forecast
from helios.engine.types import Series
from helios.scaler.runtime.runner import FitTimeout, ModelRunner
from helios.scaler.runtime.telemetry import Telemetry

from ..helpers import STEP, daily_wave


def histories(count: int) -> list[Series]:
    end = 1_800_000_000 // STEP * STEP
    ts = np.arange(end - 575 * STEP, end + 1, STEP)
    rng = np.random.default_rng(7)
    return [Series(ts, daily_wave(base=50 + 10 * i) + rng.normal(0, 3, ts.size)) for i in range(count)]


@pytest.fixture
async def runner():
    r = ModelRunner(1, Telemetry(CollectorRegistry()))  # one worker, two slots: the calls beyond queue and batch
    await r.warm_up()
    yield r
    r.close()


def fitted(count: int) -> list[tuple[bytes, Series]]:
    """(artifact, history) of `count` baseline workloads, each history one step past its fit."""
    return [(fit_and_forecast("baseline", {}, Series(h.timestamps[:-1], h.values[:-1]), STEP, 6).artifact, h)
            for h in histories(count)]


def alone(artifact: bytes, history: Series):
    return update_and_forecast(artifact, history, STEP, 6)


async def test_batched_updates_and_scores_equal_the_calls_made_one_by_one(runner):
    workloads = fitted(24)
    handed = []
    schedule = runner._pool.schedule
    runner._pool.schedule = lambda fn, args, **kw: handed.append(fn) or schedule(fn, args, **kw)
    got = await asyncio.gather(*(runner.update("baseline", a, h, STEP, 6, 60) for a, h in workloads),
                               *(runner.score("zscore", None, h, STEP, 60) for _, h in workloads))
    assert len(handed) < len(got)  # batched
    for (a, h), batched in zip(workloads, got[:24], strict=True):
        one = alone(a, h)
        assert batched.artifact == one.artifact
        np.testing.assert_array_equal(batched.forecast.point, one.forecast.point)
        np.testing.assert_array_equal(batched.forecast.quantiles, one.forecast.quantiles)
    for (_, h), batched in zip(workloads, got[24:], strict=True):
        assert repr(batched) == repr(score_latest("zscore", None, h, STEP))  # repr: NaN equals NaN


async def test_calls_arriving_one_by_one_within_the_linger_go_as_one_batch(runner):
    workloads = fitted(6)
    handed = []
    schedule = runner._pool.schedule
    runner._pool.schedule = lambda fn, args, **kw: handed.append(fn) or schedule(fn, args, **kw)

    async def later(i: int, artifact: bytes, history: Series):
        await asyncio.sleep(0.05 * i)  # as jittered refresh loops find their new samples, one by one
        return await runner.update("baseline", artifact, history, STEP, 6, 60)

    got = await asyncio.gather(*(later(i, a, h) for i, (a, h) in enumerate(workloads)))
    assert len(handed) == 1  # one hand-off, where each call had found an idle worker and gone alone
    assert [g.artifact for g in got] == [alone(a, h).artifact for a, h in workloads]


async def test_a_failing_call_fails_alone_in_its_batch(runner):
    workloads = fitted(8)
    workloads[3] = (b"not a model", workloads[3][1])
    got = await asyncio.gather(*(runner.update("baseline", a, h, STEP, 6, 60) for a, h in workloads),
                               return_exceptions=True)
    assert isinstance(got[3], ValueError)
    assert [g.artifact for g in got[:3] + got[4:]] == [alone(a, h).artifact for a, h in workloads[:3] + workloads[4:]]


async def test_a_hung_call_times_out_alone_and_the_rest_of_its_batch_is_run_again(runner):
    workloads = fitted(6)
    updates = [runner.update("baseline", a, h, STEP, 6, 2.0) for a, h in workloads]
    hung = runner._run("sleep", "update", 2.0, time.sleep, 3600, batched=True)
    # All arrive within the runner's linger and go as one batch: the hung one times it out, and each is
    # then run alone.
    got = await asyncio.gather(*updates[:2], hung, *updates[2:], return_exceptions=True)
    assert isinstance(got[2], FitTimeout)
    assert [g.artifact for g in got[:2] + got[3:]] == [alone(a, h).artifact for a, h in workloads]
