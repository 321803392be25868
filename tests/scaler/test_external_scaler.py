"""Every ExternalScaler rpc over a real loopback gRPC channel to a running Helios."""

import asyncio
import gc
import math

import grpc
import numpy as np
import pytest

from helios.scaler.app import YOUNG_OBJECTS
from helios.scaler.pb import externalscaler_pb2 as pb

from ..helpers import daily_wave, fast_settings, provisioned, sample_value, write_trace

DEMO = {"source": "demo", "targetValue": "50", "scalerAddress": "helios.helios:6000"}


async def test_get_metric_spec_sets_both_target_fields_and_a_path_safe_name(start_app, client_for):
    client = client_for(await start_app())
    spec = await client.scaler.GetMetricSpec(client.ref({**DEMO, "targetValue": "12.5"}), timeout=5)
    assert len(spec.metricSpecs) == 1
    s = spec.metricSpecs[0]
    assert s.targetSizeFloat == 12.5 and s.targetSize == 12
    assert s.metricName.startswith("helios-demo-") and all(c.isalnum() or c == "-" for c in s.metricName)


async def test_get_metrics_answers_the_forecast_demand_in_both_fields(start_app, client_for, tmp_path):
    values = daily_wave()
    path = write_trace(tmp_path / "web.csv", values)
    app = await start_app()
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    v = await client.get_metrics(md)
    snap = app.store.get(("shop", "web", v.metricName))
    assert snap.forecast is not None and snap.observed == pytest.approx(values[-1])
    # The answer is the forecast's 0.7 quantile (the default) over the lead window, never below the observed
    # value, and a rise is served at least past the HPA's 10% tolerance.
    assert v.metricValueFloat >= values[-1]
    assert v.metricValueFloat <= max(snap.forecast.quantile(0.7)[:2].max(), 1.1 * values[-1]) + 1e-9
    assert v.metricValue == math.ceil(v.metricValueFloat)


async def test_observe_mode_answers_the_observed_value(start_app, client_for, tmp_path):
    values = np.linspace(10, 200, 300)  # rising: a forecast would answer more than the last value
    path = write_trace(tmp_path / "web.csv", values)
    client = client_for(await start_app())
    act = await client.get_metrics({"source": "file", "path": str(path), "targetValue": "10"})
    observe = await client.get_metrics({"source": "file", "path": str(path), "targetValue": "10", "mode": "observe"})
    assert observe.metricValueFloat == pytest.approx(200)
    assert act.metricValueFloat > observe.metricValueFloat


async def test_is_active_follows_the_metric_and_activation_value(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", np.full(300, 20.0))
    client = client_for(await start_app())
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    value = (await client.get_metrics(md)).metricValueFloat
    assert value == pytest.approx(20.0)
    assert (await client.scaler.IsActive(client.ref(md), timeout=5)).result is True
    idle = {**md, "activationValue": "25"}
    assert (await client.scaler.IsActive(client.ref(idle), timeout=5)).result is False


async def test_stream_is_active_sends_at_once_then_on_change_and_stops_when_cancelled(
    start_app, client_for, tmp_path
):
    path = write_trace(tmp_path / "web.csv", np.full(300, 20.0))
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1}))
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10", "activationValue": "5"}
    call = client.scaler.StreamIsActive(client.ref(md))
    first = await asyncio.wait_for(call.read(), 3)
    assert first.result is True
    write_trace(path, np.full(300, 0.0))  # the load goes away
    second = await asyncio.wait_for(call.read(), 5)
    assert second.result is False
    assert app.telemetry.active_streams._value.get() == 1
    call.cancel()
    for _ in range(50):
        if app.telemetry.active_streams._value.get() == 0:
            break
        await asyncio.sleep(0.05)
    assert app.telemetry.active_streams._value.get() == 0


async def test_stream_sends_nothing_while_activity_is_unchanged(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", np.full(300, 20.0))
    client = client_for(await start_app())
    call = client.scaler.StreamIsActive(client.ref({"source": "file", "path": str(path), "targetValue": "10"}))
    first = await asyncio.wait_for(call.read(), 3)
    assert first.result is True  # 20 > activationValue 0
    with pytest.raises(asyncio.TimeoutError):  # 0.5 s = 10 checks at 0.05 s, and no message
        await asyncio.wait_for(asyncio.shield(call.read()), 0.5)
    call.cancel()


@pytest.mark.parametrize("metadata, fragment", [
    ({"targetValue": "10"}, "source: required"),
    ({"source": "demo", "targetValue": "-1"}, "targetValue='-1'"),
    ({"source": "demo", "targetValue": "1", "quantile": "7"}, "quantile='7'"),
    ({"source": "demo", "targetValue": "1", "lead": "5m"}, "lead='5m': unknown key"),
])
@pytest.mark.parametrize("rpc", ["GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive"])
async def test_invalid_metadata_is_invalid_argument_on_every_rpc(start_app, client_for, rpc, metadata, fragment):
    client = client_for(await start_app())
    ref = client.ref(metadata)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        if rpc == "GetMetrics":
            await client.scaler.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName="x"), timeout=5)
        elif rpc == "StreamIsActive":
            await client.scaler.StreamIsActive(ref, timeout=5).read()
        else:
            await getattr(client.scaler, rpc)(ref, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in e.value.details()


async def test_unknown_metric_name_is_not_found(start_app, client_for):
    client = client_for(await start_app())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.get_metrics(DEMO, metric_name="s0-helios-demo-0000000000")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "GetMetricSpec names it 'helios-demo-" in e.value.details()


async def test_no_data_at_all_is_unavailable_so_keda_fallback_acts(start_app, client_for, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("timestamp,value\n")
    client = client_for(await start_app())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.get_metrics({"source": "file", "path": str(path), "targetValue": "1"})
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no data yet" in e.value.details() and "no samples" in e.value.details()


async def test_a_query_the_source_rejects_is_invalid_argument(start_app, client_for, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n0,lots\n")
    client = client_for(await start_app())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.get_metrics({"source": "file", "path": str(path), "targetValue": "1"})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "line 2" in e.value.details()


async def test_concurrent_first_calls_cause_one_refresh(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave())
    app = await start_app()
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    name = await client.metric_name(md)
    values = await asyncio.gather(*(client.get_metrics(md, name) for _ in range(64)))
    assert len({v.metricValueFloat for v in values}) == 1
    assert sample_value(client.scrape(), "helios_refreshes_total", source="file", result="ok") == 1
    assert app.refresher.tracked == 1


async def test_a_source_outage_serves_the_last_forecast_then_unavailable_then_recovers(
    start_app, client_for, tmp_path
):
    path = write_trace(tmp_path / "web.csv", daily_wave())
    settings = fast_settings(metrics={"refresh_interval": 0.2, "staleness_limit": 1.5})
    app = await start_app(settings)
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(md)
    await provisioned(app)  # the plan is chosen: the answer now moves only with the data
    before = (await client.get_metrics(md)).metricValueFloat
    labels = {"namespace": "shop", "scaledobject": "web"}

    path.unlink()  # the source goes down
    await asyncio.sleep(0.6)
    during = (await client.get_metrics(md)).metricValueFloat
    assert during == pytest.approx(before)  # last good forecast still served
    text = client.scrape()
    assert sample_value(text, "helios_refresh_consecutive_failures", **labels) >= 2
    assert sample_value(text, "helios_stale", **labels) == 0
    assert sample_value(text, "helios_source_errors_total", source="file", kind="SourceUnavailable") >= 2
    assert sample_value(text, "helios_forecast_age_seconds", **labels) >= 0.5

    await asyncio.sleep(1.2)  # past the staleness limit
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.get_metrics(md)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "staleness limit" in e.value.details() and "no such file" in e.value.details()
    text = client.scrape()
    assert sample_value(text, "helios_stale", **labels) == 1
    assert sample_value(text, "helios_metric_value", **labels) is None

    write_trace(path, daily_wave())  # the source comes back
    await asyncio.sleep(0.6)
    assert (await client.get_metrics(md)).metricValueFloat == pytest.approx(before, rel=0.05)
    assert sample_value(client.scrape(), "helios_stale", **labels) == 0


async def test_metrics_endpoint_exports_the_served_value_per_workload(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", np.full(300, 20.0))
    client = client_for(await start_app())
    v = await client.get_metrics({"source": "file", "path": str(path), "targetValue": "8"})
    text = client.scrape()
    labels = {"namespace": "shop", "scaledobject": "web", "metric": v.metricName}
    assert sample_value(text, "helios_metric_value", **labels) == pytest.approx(v.metricValueFloat)
    assert sample_value(text, "helios_implied_replicas", **labels) == 3  # ceil(20 / 8)
    assert sample_value(text, "helios_forecast_value", bound="point", **labels) == pytest.approx(20.0)
    assert sample_value(text, "helios_workloads") == 1
    assert sample_value(text, "helios_inference_requests_total", rpc="GetMetrics", code="OK") == 1
    # and the process's own, as any Python exporter has: memory, and the cycle collector's passes
    assert sample_value(text, "process_resident_memory_bytes") > 0
    assert sample_value(text, "python_gc_collections_total", generation="2") >= 0


async def test_idle_workloads_are_dropped_and_disappear_from_metrics(start_app, client_for):
    settings = fast_settings(metrics={"refresh_interval": 0.1, "idle_timeout": 0.3})
    app = await start_app(settings)
    client = client_for(app)
    await client.get_metrics(DEMO)
    assert sample_value(client.scrape(), "helios_workloads") == 1
    await asyncio.sleep(1.0)
    assert app.refresher.tracked == 0
    assert sample_value(client.scrape(), "helios_workloads") == 0
    assert sample_value(client.scrape(), "helios_observed_value", scaledobject="web") is None


async def test_a_serving_replica_collects_young_objects_every_10000_allocations_not_700(start_app):
    gc.set_threshold(700, 10, 10)  # Python's default
    await start_app()
    assert gc.get_threshold() == (YOUNG_OBJECTS, 10, 10) and YOUNG_OBJECTS == 10_000


async def test_the_collectors_passes_are_timed_while_serving_and_no_longer_after(start_app, client_for):
    app = await start_app()
    client = client_for(app)
    gc.collect()  # a full pass, as the collector runs one now and then
    assert sample_value(client.scrape(), "helios_gc_pause_seconds_count", generation="2") >= 1
    assert sample_value(client.scrape(), "helios_gc_pause_seconds_sum", generation="2") > 0
    await app.stop()
    full = app.telemetry.gc_pauses.labels("2")
    before = full._sum.get()
    gc.collect()
    assert app.telemetry.gc_callback not in gc.callbacks and full._sum.get() == before
