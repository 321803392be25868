"""Fits run on their schedule; between fits the fitted model only follows new data."""

import asyncio

import numpy as np

from ..helpers import daily_wave, fast_settings, sample_value, write_trace


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
