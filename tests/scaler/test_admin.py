"""The admin API over real loopback gRPC: Predict (workload and ad-hoc series) and ListWorkloads."""

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helios.engine.pipeline import fit_and_forecast
from helios.engine.types import Series
from helios.scaler.pb import admin_pb2 as pb

from ..helpers import daily_wave, write_trace


def series_request(values, start=1_700_000_100, step_seconds=300, **fields):
    samples = [pb.Sample(timestamp=Timestamp(seconds=start + i * step_seconds), value=v) for i, v in enumerate(values)]
    return pb.PredictRequest(series=pb.Series(samples=samples), **fields)


async def test_predict_on_an_adhoc_series_matches_the_engine(start_app, client_for):
    client = client_for(await start_app())
    values = list(daily_wave(400))
    r = await client.admin.Predict(series_request(values, horizon="1h", interval_level=0.9), timeout=10)
    expected = fit_and_forecast("baseline", {"window": 12, "trend_window": 24, "calibration_window": 2016},
                                Series(1_700_000_100 + 300 * np.arange(400), np.array(values)), 300, 12).forecast
    lower, upper = expected.interval(0.9)
    assert r.model == "baseline" and r.interval_level == pytest.approx(0.9) and len(r.points) == 12
    assert [p.timestamp.seconds for p in r.points] == expected.timestamps.tolist()
    assert np.allclose([p.value for p in r.points], expected.point)
    assert np.allclose([p.lower for p in r.points], lower) and np.allclose([p.upper for p in r.points], upper)
    assert r.data_end.seconds == 1_700_000_100 + 399 * 300


async def test_predict_for_a_tracked_workload_returns_its_snapshot(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave())
    app = await start_app()
    client = client_for(app)
    v = await client.get_metrics({"source": "file", "path": str(path), "targetValue": "10"})
    ref = pb.WorkloadRef(namespace="shop", name="web", metric_name=v.metricName)
    r = await client.admin.Predict(pb.PredictRequest(workload=ref), timeout=5)
    snap = app.store.get(("shop", "web", v.metricName))
    assert len(r.points) == 6 and r.interval_level == pytest.approx(0.8)
    assert np.allclose([p.value for p in r.points], snap.forecast.point)
    assert r.data_end.seconds == snap.data_end
    shorter = await client.admin.Predict(pb.PredictRequest(workload=ref, horizon="15m"), timeout=5)
    assert [p.value for p in shorter.points] == [p.value for p in r.points[:3]]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.admin.Predict(pb.PredictRequest(workload=ref, horizon="2h"), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "beyond the workload's forecast" in e.value.details()


@pytest.mark.parametrize("request_, code, fragments", [
    (pb.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT, ["target: set `workload`"]),
    (pb.PredictRequest(workload=pb.WorkloadRef(namespace="a", name="b", metric_name="c")),
     grpc.StatusCode.NOT_FOUND, ["a/b/c is not tracked"]),
    (series_request([]), grpc.StatusCode.INVALID_ARGUMENT, ["series.samples: 0 given; 1 to 20000 allowed"]),
    (series_request([1.0, 2.0], model="arima"), grpc.StatusCode.INVALID_ARGUMENT, ["model: 'arima' is unknown"]),
    (series_request([1.0, 2.0], horizon="soon"), grpc.StatusCode.INVALID_ARGUMENT, ["horizon: 'soon' is not"]),
    (series_request([1.0, 2.0], horizon="30d"), grpc.StatusCode.INVALID_ARGUMENT, ["horizon: '30d' is 8640 steps"]),
    (series_request([1.0, float("nan")]), grpc.StatusCode.INVALID_ARGUMENT,
     ["series.samples[1].value: must be finite"]),
    (series_request([1.0, 2.0], step_seconds=0), grpc.StatusCode.INVALID_ARGUMENT,
     ["series.samples[1].timestamp: must be later than samples[0]"]),
    (series_request([1.0, 2.0], interval_level=1.5), grpc.StatusCode.INVALID_ARGUMENT, ["interval_level: 1.5"]),
    (series_request([1.0], start=-62_135_596_801), grpc.StatusCode.INVALID_ARGUMENT,  # found by the fuzz test
     ["series.samples[0].timestamp: -62135596801 s is outside 1970-01-01 to 9999-12-31"]),
    (series_request([1.0], start=253_402_300_000, horizon="1h"), grpc.StatusCode.INVALID_ARGUMENT,
     ["series.step: 300 s steps for 12 steps end after 9999-12-31"]),
    (series_request([1.0] * 5, model="arima", horizon="x", interval_level=2), grpc.StatusCode.INVALID_ARGUMENT,
     ["interval_level", "model", "horizon"]),
])
async def test_bad_predict_requests_name_the_field(start_app, client_for, request_, code, fragments):
    client = client_for(await start_app())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.admin.Predict(request_, timeout=5)
    assert e.value.code() == code
    for fragment in fragments:
        assert fragment in e.value.details()


async def test_too_many_samples_are_refused_before_any_fit(start_app, client_for):
    client = client_for(await start_app())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.admin.Predict(series_request([1.0] * 20_001), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "20001 given" in e.value.details()


async def test_list_workloads_shows_model_freshness_and_errors(start_app, client_for, tmp_path):
    good = write_trace(tmp_path / "good.csv", np.full(300, 20.0))
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,value\n")
    client = client_for(await start_app())
    await client.get_metrics({"source": "file", "path": str(good), "targetValue": "10"}, name="api")
    with pytest.raises(grpc.aio.AioRpcError):
        await client.get_metrics({"source": "file", "path": str(empty), "targetValue": "10"}, name="batch",
                                 namespace="jobs")
    rows = (await client.admin.ListWorkloads(pb.ListWorkloadsRequest(), timeout=5)).workloads
    assert [(w.ref.namespace, w.ref.name) for w in rows] == [("jobs", "batch"), ("shop", "api")]
    batch, api = rows
    assert api.model == "baseline" and api.source == "file" and api.mode == "act" and api.target_value == 10
    assert api.observed_value == 20 and api.served_value == pytest.approx(20)
    assert api.last_refresh.seconds > 0 and api.forecast_age_seconds >= 0 and not api.stale
    assert batch.consecutive_failures >= 1 and "no samples" in batch.last_error
    assert not batch.HasField("served_value") and not batch.HasField("observed_value")
    only = (await client.admin.ListWorkloads(pb.ListWorkloadsRequest(namespace="jobs"), timeout=5)).workloads
    assert [w.ref.name for w in only] == ["batch"]


def test_explain_shows_the_range_a_value_fell_outside():
    from helios.engine.anomaly.base import Severity
    from helios.scaler.runtime.state import AnomalyReading
    from helios.scaler.serve.admin import _reading_point

    reading = AnomalyReading("xgboost", 1_700_000_100, 250.0, 0.4, Severity.WARNING, 1 - 1e-9, True, (), (20.0, 180.0))
    point = _reading_point(reading)
    assert point.beyond_range and (point.range_low, point.range_high) == (20.0, 180.0) and point.alert
    assert not _reading_point(AnomalyReading("xgboost", 1_700_000_100, 90.0, 0.4, Severity.NONE)).beyond_range
