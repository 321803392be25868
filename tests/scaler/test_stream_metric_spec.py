"""StreamMetricSpec (KEDA main's newest ExternalScaler rpc) over real loopback gRPC: the current specs
when the stream opens, the same as GetMetricSpec; a new message when they change; an error KEDA can
read; and a KEDA that predates the rpc (it calls only the four older ones) is unaffected."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest

from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.serve.external_scaler import ExternalScaler

from ..helpers import fast_settings

DEMO = {"source": "demo", "targetValue": "50"}


def test_the_vendored_rpc_is_keda_mains_field_by_field():
    method = pb.DESCRIPTOR.services_by_name["ExternalScaler"].methods_by_name["StreamMetricSpec"]
    assert method.input_type.full_name == "externalscaler.ScaledObjectRef"
    assert method.output_type.full_name == "externalscaler.GetMetricSpecResponse"
    assert method.server_streaming and not method.client_streaming


async def test_the_stream_opens_with_what_get_metric_spec_answers(start_app, client_for):
    app = await start_app(fast_settings())
    client = client_for(app)
    call = client.scaler.StreamMetricSpec(client.ref(DEMO))
    first = await asyncio.wait_for(call.read(), 5)
    assert first == await client.scaler.GetMetricSpec(client.ref(DEMO), timeout=5)
    assert first.metricSpecs[0].targetSizeFloat == 50
    assert app.telemetry.metric_spec_streams._value.get() == 1
    assert app.telemetry.active_streams._value.get() == 0  # StreamIsActive's own gauge is untouched
    call.cancel()


async def test_a_change_is_streamed_and_nothing_else(start_app, client_for):
    app = await start_app(fast_settings())
    client = client_for(app)
    servicer = app.external_scaler
    assert isinstance(servicer, ExternalScaler)
    real = servicer._parse
    target = {"value": 50.0}

    def parse(namespace, name, metadata):  # what the operator's side would change: the target
        return replace(real(namespace, name, metadata), target_value=target["value"])

    servicer._parse = parse
    call = client.scaler.StreamMetricSpec(client.ref(DEMO))
    assert (await asyncio.wait_for(call.read(), 5)).metricSpecs[0].targetSizeFloat == 50
    pending = asyncio.ensure_future(call.read())
    done, _ = await asyncio.wait([pending], timeout=0.3)  # several checks (every 0.05 s): unchanged, silent
    assert not done
    target["value"] = 80.0
    changed = await asyncio.wait_for(pending, 5)
    assert changed.metricSpecs[0].targetSizeFloat == 80 and changed.metricSpecs[0].targetSize == 80
    assert changed == await client.scaler.GetMetricSpec(client.ref(DEMO), timeout=5)  # they agree
    call.cancel()


async def test_bad_metadata_ends_the_stream_with_invalid_argument(start_app, client_for):
    client = client_for(await start_app(fast_settings()))
    call = client.scaler.StreamMetricSpec(client.ref({"source": "demo"}))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await asyncio.wait_for(call.read(), 5)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "targetValue: required" in e.value.details()


async def test_an_older_keda_that_never_streams_specs_is_unaffected(start_app, client_for):
    """Calls by method path with the message types alone, as a client generated from the older proto."""
    app = await start_app(fast_settings())
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
    try:
        def unary(name, response):
            return channel.unary_unary(f"/externalscaler.ExternalScaler/{name}",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=response.FromString)

        ref = pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata=DEMO)
        spec = await unary("GetMetricSpec", pb.GetMetricSpecResponse)(ref, timeout=5)
        name = spec.metricSpecs[0].metricName
        metrics = await unary("GetMetrics", pb.GetMetricsResponse)(
            pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name), timeout=5)
        active = await unary("IsActive", pb.IsActiveResponse)(ref, timeout=5)
        assert metrics.metricValues[0].metricValueFloat > 0 and active.result is True
        assert app.telemetry.metric_spec_streams._value.get() == 0
    finally:
        await channel.close()
