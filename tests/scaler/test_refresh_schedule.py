"""Fits run on their schedule; between fits the fitted model only follows new data."""

import asyncio
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from helios.engine.errors import NoData
from helios.engine.types import Series
from helios.scaler.runtime.kept import REFETCH_STEPS

from ..helpers import STEP, daily_wave, fast_settings, sample_value, until, write_trace


def inferences(client, operation: str, model: str = "baseline") -> float:
    value = sample_value(client.scrape(), "helios_model_fit_duration_seconds_count", model=model, operation=operation)
    return value or 0


async def test_new_data_updates_the_fitted_model_and_the_refit_waits_for_its_interval(start_app, client_for, tmp_path):
    values = daily_wave()
    path = write_trace(tmp_path / "web.csv", values)
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}, models={"refit_interval": 3600}))
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(md)
    await asyncio.sleep(0.5)  # several refreshes, no new data: nothing to forecast
    assert (inferences(client, "fit"), inferences(client, "update")) == (1, 0)

    write_trace(path, np.append(values[:-1], values[-1] + 30))  # the newest sample changes
    for _ in range(40):  # updates go to the workers in batches, after the runner's linger (0.5 s)
        await asyncio.sleep(0.1)
        if inferences(client, "update"):
            break
    await asyncio.sleep(0.2)  # a refresh or two more: the same sample is not updated twice
    assert inferences(client, "fit") == 1 and inferences(client, "update") == 1
    snap = next(s for s in app.store.all())
    assert snap.observed == values[-1] + 30 and snap.forecast.point[0] > values[-1]


async def test_the_model_is_refitted_every_refit_interval(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave())
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}, models={"refit_interval": 0.3}))
    client = client_for(app)
    await client.get_metrics({"source": "file", "path": str(path), "targetValue": "10"})
    await asyncio.sleep(1.0)
    assert inferences(client, "fit") >= 2


async def test_changing_the_trigger_model_refits_with_the_new_one(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave())
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}))
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(md)
    await client.get_metrics({**md, "model": "naive"})  # same metric name: the ScaledObject was edited
    await asyncio.sleep(0.5)
    assert inferences(client, "fit", model="naive") == 1
    assert next(s for s in app.store.all()).forecast.model == "naive"


async def test_auto_reports_its_choice_and_losses(start_app, client_for, tmp_path):
    from helios.scaler.pb import admin_pb2

    path = write_trace(tmp_path / "web.csv", daily_wave(n=3 * 288))
    app = await start_app(fast_settings(models={"auto": {"candidates": ["naive", "seasonal_naive", "baseline"]}}))
    client = client_for(app)
    await client.get_metrics({"source": "file", "path": str(path), "targetValue": "10", "model": "auto"})
    (row,) = (await client.admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5)).workloads
    singles = {"naive", "seasonal_naive", "baseline"}
    point = {k.removeprefix("point:"): v for k, v in row.selection_losses.items() if k.startswith("point:")}
    assert row.model == "auto" and singles <= set(point)
    assert {m for label in point for m in label.split("+")} == singles  # and their averages
    # a noiseless daily wave repeats itself exactly: seasonal naive alone is perfect, point and quantiles
    assert row.forecast_model == "seasonal_naive" == min(point, key=point.get)
    assert row.fitted_at.seconds > 0


class WindowSource:
    """Answers each window with the samples of `series` inside it, and records the windows asked for."""

    name: ClassVar[str] = "window"

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, series: Series) -> None:
        self.series = series
        self.asked: list[tuple[int, int]] = []

    def fetch(self, params, start: int, end: int, step: int) -> Series:
        self.asked.append((start, end))
        inside = self.series.between(start, end)
        if not len(inside):
            raise NoData("no samples in the window")
        return inside


def wave_until(last: int, values: np.ndarray) -> Series:
    return Series(last - STEP * np.arange(len(values))[::-1], values)


async def test_refreshes_fetch_the_newest_steps_and_keep_the_rest_of_the_window(start_app, client_for):
    now = int(time.time()) // STEP * STEP
    values = daily_wave()
    source = WindowSource(wave_until(now - STEP, values))
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}, models={"refit_interval": 3600}),
                          sources={"window": source})
    name = (await client_for(app).get_metrics({"source": "window", "targetValue": "10"})).metricName
    key = ("shop", "web", name)
    await until(lambda: app.store.get(key).forecast is not None, timeout=10, what="the first forecast")
    first_start, _ = source.asked[0]
    assert abs(first_start - (time.time() - app.settings.metrics.history)) < 10  # the whole window, once

    revised = np.append(values[:-1], [values[-1] + 7, 123.0])  # the newest sample revised, and a new one
    source.series = wave_until(now, revised)
    await until(lambda: app.store.get(key).observed == 123.0, timeout=10, what="the new sample")
    await asyncio.sleep(1.0)  # refreshes after it, the update's batch wait (0.5 s) included
    tails = {start for start, _ in source.asked[1:]}
    assert tails <= {now - (REFETCH_STEPS + 1) * STEP, now - REFETCH_STEPS * STEP} and len(source.asked) > 3
    kept = app.workloads.get(key).kept.series  # what the models were given: the whole window, revision included
    assert kept.timestamps.tolist() == source.series.timestamps.tolist()
    assert kept.values.tolist() == revised.tolist()


async def test_the_whole_window_is_fetched_again_every_refit_interval(start_app, client_for):
    source = WindowSource(wave_until(int(time.time()) // STEP * STEP, daily_wave()))
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}, models={"refit_interval": 0.5}),
                          sources={"window": source})
    await client_for(app).get_metrics({"source": "window", "targetValue": "10"})
    await asyncio.sleep(1.6)
    history = app.settings.metrics.history
    whole = sum(abs(start - (end - history)) <= 1 for start, end in source.asked)
    assert 3 <= whole < len(source.asked) / 2  # every 0.5 s, the newest steps between
