"""Anomaly score, rolling error and recommendation of tracked workloads: on /metrics, in the audit log,
and through the admin API's Detect, Recommend, ListModels and Explain, over real loopback gRPC."""

import asyncio
import json
import logging
import math
import time

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helios.engine.models import MODELS
from helios.engine.tracking import ForecastError
from helios.scaler.pb import admin_pb2 as pb

from ..helpers import fast_settings, sample_value, write_trace

START = 1_700_000_100 // 300 * 300


def settings(**sections):
    return fast_settings(anomaly={"detector": "zscore"}, **sections)


def pb_series(values, start=START, step=300):
    return pb.Series(samples=[pb.Sample(timestamp=Timestamp(seconds=start + i * step), value=float(v))
                              for i, v in enumerate(values)])


def spiky(n=576, spike=400.0):
    rng = np.random.default_rng(1)
    values = 50 + rng.normal(0, 1, n)
    values[-1] += spike
    return values


async def tracked(start_app, client_for, tmp_path, values, **metadata):
    path = write_trace(tmp_path / "load.csv", values)
    app = await start_app(settings())
    client = client_for(app)
    meta = {"source": "file", "path": str(path), "targetValue": "10", **metadata}
    await client.get_metrics(meta)
    name = await client.metric_name(meta)
    await insights_of(app, ("shop", "web", name))
    return app, client, pb.WorkloadRef(namespace="shop", name="web", metric_name=name)


async def insights_of(app, key, timeout=20.0):
    """Wait for the insights that follow the first forecast (they run after it is published)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while app.store.get(key).recommendation is None:
        assert asyncio.get_running_loop().time() < deadline, "no recommendation within the timeout"
        await asyncio.sleep(0.02)


async def test_a_spike_is_scored_exported_counted_and_explained(start_app, client_for, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="helios.audit")
    app, client, ref = await tracked(start_app, client_for, tmp_path, spiky(), signal="cpu")
    text = client.scrape()
    labels = {"namespace": "shop", "scaledobject": "web", "metric": ref.metric_name}
    assert sample_value(text, "helios_anomaly_score", **labels) > 4
    assert sample_value(text, "helios_anomaly_detected", **labels) == 1
    assert sample_value(text, "helios_anomaly_detections_total", severity="critical") == 1
    assert sample_value(text, "helios_predicted_cpu", **labels) == \
        sample_value(text, "helios_forecast_value", bound="point", **labels)
    assert sample_value(text, "helios_predicted_memory", **labels) is None  # the trigger's signal is cpu
    assert 0 <= sample_value(text, "helios_prediction_confidence", **labels) <= 1
    snap = app.store.get(("shop", "web", ref.metric_name))
    rec = snap.recommendation
    assert sample_value(text, "helios_recommended_replicas", **labels) == rec.target_replicas
    assert sample_value(text, "helios_recommendation", action=rec.action.value, **labels) == 1
    assert sample_value(text, "helios_recommendations_total", action=rec.action.value) == 1
    assert rec.action.value == "ALERT_CRITICAL" and "ALERT_CRITICAL" in rec.reason

    audits = [r for r in caplog.records if r.name == "helios.audit"]
    assert len(audits) == 1
    line = audits[0]
    assert line.workload == f"shop/web/{ref.metric_name}" and line.action == "ALERT_CRITICAL"
    assert line.reason == rec.reason and line.current_replicas_source == "estimate"
    assert set(line.inputs) == {"observed", "model", "forecast_peak", "anomaly_score", "anomaly_likelihood",
                                "anomaly_alert"}  # a summary, not the series
    # The spike is the first flag of its incident: it raises the alert; zscore judges samples, no runs of them.
    assert line.inputs["anomaly_alert"] is True and line.inputs["anomaly_likelihood"] is None

    explained = await client.admin.Explain(pb.ExplainRequest(workload=ref), timeout=10)
    assert explained.anomaly.severity == "CRITICAL" and explained.anomaly.anomaly and explained.anomaly.alert
    assert explained.recommendation.action == "ALERT_CRITICAL"
    assert explained.recommendation.current_replicas_source == "estimate"
    assert len(explained.recent_inputs) == 25  # two hours of 5-minute samples, both ends included
    assert explained.recent_inputs[-1].value == pytest.approx(snap.observed)
    assert explained.model_choice == "baseline, set by the server default (models.default)"
    assert "ceil(" in explained.served_value_reason and "targetValue 10" in explained.served_value_reason
    assert len(explained.forecast.points) == 6 and explained.status.ref == ref


async def test_recommend_for_a_workload_with_the_running_replica_count(start_app, client_for, tmp_path):
    _, client, ref = await tracked(start_app, client_for, tmp_path, np.full(400, 95.0))
    r = await client.admin.Recommend(pb.RecommendRequest(workload=ref, current_replicas=2), timeout=10)
    assert r.action == "SCALE_UP" and r.current_replicas == 2 and r.current_replicas_source == "request"
    assert r.target_replicas == 10  # 95 / 10 per replica needs 10: at most max_replicas (10)
    assert r.conditions[0].action == "SCALE_UP" and r.confidence > 0.8
    settled = await client.admin.Recommend(pb.RecommendRequest(workload=ref), timeout=10)
    assert settled.current_replicas_source == "estimate" and settled.current_replicas == 10
    assert settled.action == "NONE"


async def test_rolling_forecast_error_is_exported_per_workload(start_app, client_for, tmp_path):
    app, client, ref = await tracked(start_app, client_for, tmp_path, np.full(400, 20.0))
    key = ("shop", "web", ref.metric_name)
    app.workloads.publish(key, forecast_error=ForecastError(12, 0.125, 0.75))
    text = client.scrape()
    labels = {"namespace": "shop", "scaledobject": "web", "metric": ref.metric_name}
    assert sample_value(text, "helios_forecast_mape", **labels) == 0.125
    assert sample_value(text, "helios_forecast_interval_coverage", **labels) == 0.75
    assert sample_value(text, "helios_forecast_matured", **labels) == 12
    explained = await client.admin.Explain(pb.ExplainRequest(workload=ref), timeout=10)
    assert (explained.rolling_mape, explained.rolling_interval_coverage, explained.rolling_matured) == \
        (0.125, 0.75, 12)


async def test_detect_scores_an_adhoc_series_and_a_tracked_workload(start_app, client_for, tmp_path):
    _, client, ref = await tracked(start_app, client_for, tmp_path, spiky())
    adhoc = await client.admin.Detect(pb.DetectRequest(series=pb_series(spiky()), last=5), timeout=10)
    assert adhoc.detector == "zscore" and len(adhoc.points) == 5
    assert adhoc.latest.severity == "CRITICAL" and adhoc.latest.anomaly and adhoc.flagged >= 1
    assert not math.isnan(adhoc.points[0].score) and adhoc.points[-1] == adhoc.latest
    threshold = await client.admin.Detect(pb.DetectRequest(workload=ref, detector="threshold"), timeout=10)
    assert threshold.detector == "threshold" and len(threshold.points) == 576 and threshold.latest.anomaly


async def test_recommend_on_adhoc_inputs_acts_before_a_forecast_spike(start_app, client_for):
    client = client_for(await start_app(settings()))
    now_ish = START + 24 * 300
    forecast = [pb.ForecastPoint(timestamp=Timestamp(seconds=now_ish + i * 300), value=v, lower=v * 0.9, upper=v * 1.1)
                for i, v in enumerate([20, 20, 20, 120, 120, 120])]
    inputs = pb.RecommendInputs(load=pb_series(np.full(24, 20.0)), forecast=forecast, capacity_per_replica=10)
    r = await client.admin.Recommend(pb.RecommendRequest(inputs=inputs, current_replicas=3), timeout=10)
    assert r.action == "PREEMPTIVE_SCALE" and r.target_replicas > 3 and r.current_replicas_source == "request"
    assert any(c.action == "PREEMPTIVE_SCALE" for c in r.conditions)


@pytest.mark.parametrize("request_, fragments", [
    (pb.RecommendRequest(), ["target: set `workload`"]),
    (pb.RecommendRequest(inputs=pb.RecommendInputs(load=pb_series([1.0] * 12))),
     ["current_replicas: required with `inputs`", "inputs.capacity_per_replica: 0.0 must be"]),
    (pb.RecommendRequest(current_replicas=1, inputs=pb.RecommendInputs(
        load=pb_series([1.0, 2.0]), capacity_per_replica=1,
        forecast=[pb.ForecastPoint(timestamp=Timestamp(seconds=START), value=5, lower=6, upper=7)])),
     ["inputs.forecast[0]: must have lower <= value <= upper"]),
    (pb.RecommendRequest(current_replicas=-1, workload=pb.WorkloadRef(namespace="a", name="b", metric_name="c")),
     ["current_replicas: -1 must be >= 0"]),
    (pb.RecommendRequest(current_replicas=1, inputs=pb.RecommendInputs(load=pb.Series(), capacity_per_replica=1)),
     ["inputs.load.samples: 0 given"]),
])
async def test_recommend_rejects_bad_input_naming_every_field(start_app, client_for, request_, fragments):
    client = client_for(await start_app(settings()))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.admin.Recommend(request_, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for fragment in fragments:
        assert fragment in e.value.details()


@pytest.mark.parametrize("request_, code, fragment", [
    (pb.DetectRequest(series=pb_series([1.0] * 10), detector="isolation-forest"), grpc.StatusCode.INVALID_ARGUMENT,
     "detector: 'isolation-forest' is unknown; allowed: xgboost, zscore, threshold"),
    (pb.DetectRequest(series=pb_series([1.0] * 10), last=-1), grpc.StatusCode.INVALID_ARGUMENT, "last: -1 must be"),
    (pb.DetectRequest(series=pb_series([1.0] * 10), detector="xgboost"), grpc.StatusCode.INVALID_ARGUMENT,
     "series: xgboost needs at least 120 samples"),
    (pb.DetectRequest(workload=pb.WorkloadRef(namespace="a", name="b", metric_name="c")), grpc.StatusCode.NOT_FOUND,
     "a/b/c is not tracked"),
    (pb.ExplainRequest(workload=pb.WorkloadRef(namespace="a", name="b", metric_name="c")), grpc.StatusCode.NOT_FOUND,
     "a/b/c is not tracked"),
])
async def test_detect_and_explain_reject_bad_input(start_app, client_for, request_, code, fragment):
    client = client_for(await start_app(settings()))
    call = client.admin.Detect if isinstance(request_, pb.DetectRequest) else client.admin.Explain
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call(request_, timeout=10)
    assert e.value.code() == code and fragment in e.value.details()


async def test_list_models_shows_the_catalogue_and_every_fitted_model(start_app, client_for, tmp_path):
    _, client, ref = await tracked(start_app, client_for, tmp_path, spiky(), model="naive")
    r = await client.admin.ListModels(pb.ListModelsRequest(), timeout=10)
    assert [m.name for m in r.models] == sorted(MODELS)
    assert [m.name for m in r.models if m.is_default] == ["baseline"]
    baseline = next(m for m in r.models if m.name == "baseline")
    assert json.loads(baseline.parameters["window"]) == 12 and baseline.description
    assert list(r.detectors) == ["xgboost", "zscore", "threshold"]
    [loaded] = r.loaded
    assert loaded.ref == ref and loaded.model == "naive" and loaded.forecast_model == "naive"
    assert loaded.detector == "zscore" and loaded.fitted_at.seconds > 0


async def test_each_call_logs_a_summary_without_its_payload(start_app, client_for, caplog):
    caplog.set_level(logging.DEBUG, logger="helios.scaler.serve.calls")
    client = client_for(await start_app(settings()))
    await client.admin.Detect(pb.DetectRequest(series=pb_series(spiky(n=200))), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError):
        await client.admin.Explain(pb.ExplainRequest(workload=pb.WorkloadRef(namespace="a", name="b", metric_name="c")))
    for _ in range(100):  # the server logs after its answer is on the way: the client can be first
        lines = [r for r in caplog.records if r.getMessage() == "rpc"]
        if len(lines) == 2:
            break
        await asyncio.sleep(0.01)
    assert [(r.rpc, r.code, r.levelname, r.workload) for r in lines] == [
        ("Detect", "OK", "INFO", ""), ("Explain", "NOT_FOUND", "INFO", "a/b/c")]
    assert all(r.duration_ms > 0 for r in lines)
    assert not any("samples" in str(r.__dict__) for r in lines)


async def test_an_adhoc_fit_past_its_time_budget_is_unavailable_not_a_bad_input(start_app, client_for):
    client = client_for(await start_app(settings(models={"fit_timeout": 0.001})))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.admin.Detect(pb.DetectRequest(series=pb_series(spiky(n=300)), detector="xgboost"), timeout=30)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "did not finish" in e.value.details()


async def test_the_xgboost_detector_is_fitted_once_per_refit_interval_in_processes_of_its_own(
        start_app, client_for, tmp_path):
    written = time.time() - 300
    path = write_trace(tmp_path / "load.csv", spiky(n=2016), end=written)  # one step behind now
    app = await start_app(fast_settings(anomaly={"detector": "xgboost", "refit_interval": "1d"}))
    assert app.detection_runner is not app.runner
    client = client_for(app)
    meta = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(meta)
    key = ("shop", "web", await client.metric_name(meta))
    published = app.store.get(key)  # the refresh is over: its forecast is served before the detector is fitted
    assert published.forecast is not None and published.recommendation is None
    await insights_of(app, key)
    first = app.store.get(key).anomaly
    assert first.detector == "xgboost" and first.severity.name == "CRITICAL"
    fitted = app.workloads.get(key).detector_fitted_at
    await app.refresher.refresh(key)  # no new sample: no new forecast, nothing scored
    # The next sample arrives, one step after the first write's last (not at now's step: a step boundary may
    # have passed since then)
    write_trace(path, [*spiky(n=2016), 50.0], end=written + 300)
    await app.refresher.refresh(key)
    for _ in range(500):  # the insights of the new forecast follow in their own task
        if app.store.get(key).anomaly.timestamp > first.timestamp:
            break
        await asyncio.sleep(0.02)
    text = client.scrape()
    assert sample_value(text, "helios_model_fit_duration_seconds_count", model="xgboost", operation="detect") == 2
    assert app.store.get(key).anomaly.timestamp == first.timestamp + 300
    assert app.workloads.get(key).detector_fitted_at == fitted  # scored with the saved detector, not refitted
    # The likelihood moved on by the new sample from the state the fit left, in the serving process's record.
    second = app.store.get(key).anomaly
    assert 0 <= second.likelihood <= 1 and app.workloads.get(key).likelihood["at"] == second.timestamp
    # Explain says why: the score, the likelihood and the features behind the prediction it is measured from.
    explained = (await client.admin.Explain(pb.ExplainRequest(workload=pb.WorkloadRef(
        namespace="shop", name="web", metric_name=key[2])), timeout=10)).anomaly
    assert explained.likelihood == pytest.approx(second.likelihood) and explained.score == pytest.approx(second.score)
    assert 1 <= len(explained.drivers) <= 3 and all(d.feature for d in explained.drivers)


async def test_an_incident_raises_one_alert_not_one_per_flagged_sample(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "load.csv", spiky(), end=time.time() - 300)
    app = await start_app(settings())
    client = client_for(app)
    meta = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(meta)
    key = ("shop", "web", await client.metric_name(meta))
    await insights_of(app, key)
    first = app.store.get(key)
    assert first.anomaly.alert and first.recommendation.action.value == "ALERT_CRITICAL"
    write_trace(path, [*spiky(), 460.0])  # the incident goes on: the next sample is flagged too
    await app.refresher.refresh(key)
    for _ in range(500):
        if app.store.get(key).anomaly.timestamp > first.anomaly.timestamp:
            break
        await asyncio.sleep(0.02)
    later = app.store.get(key)
    assert later.anomaly.severity.name == "CRITICAL" and not later.anomaly.alert
    assert later.recommendation.action.value != "ALERT_CRITICAL"
    assert "no new anomaly" in " ".join(c.detail for c in later.recommendation.conditions) + later.recommendation.reason
    text = client.scrape()
    assert sample_value(text, "helios_anomaly_detections_total", severity="critical") == 1
    assert sample_value(text, "helios_anomaly_detected", namespace="shop", scaledobject="web", metric=key[2]) == 1
