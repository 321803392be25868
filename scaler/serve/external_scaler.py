"""KEDA's ExternalScaler service. Every answer comes from the in-memory snapshot: no fetch, no fit.

KEDA sets no deadline on these calls and the HPA allows about 3 s, so the handlers only parse the
(cached) metadata, note the call for the refresher and read the workload's latest snapshot.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import grpc

from ..config.metadata import MetadataParser, TriggerSpec
from ..config.settings import Settings
from ..pb import externalscaler_pb2 as pb
from ..pb import externalscaler_pb2_grpc as pb_grpc
from ..runtime.refresher import Refresher
from ..runtime.state import Answer, Availability
from ..runtime.telemetry import Telemetry
from ..runtime.workloads import Workloads
from .calls import CallError, streaming, unary, unavailable_answer


class ExternalScaler(pb_grpc.ExternalScalerServicer):
    def __init__(self, parse: MetadataParser, refresher: Refresher, workloads: Workloads, settings: Settings,
                 telemetry: Telemetry, clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self._parse = parse
        self._refresher = refresher
        self._workloads = workloads
        self._settings = settings
        self._clock = clock

    def _trigger(self, ref: pb.ScaledObjectRef) -> TriggerSpec:
        trigger = self._parse(ref.namespace, ref.name, ref.scalerMetadata)
        self._refresher.touch(trigger)
        return trigger

    async def _answer(self, trigger: TriggerSpec) -> Answer:
        snap = self._workloads.snapshot(trigger.key)
        if snap is None or snap.forecast is None:  # first contact: its first refresh may be under way
            await self._refresher.wait_for_first_refresh(trigger.key, self._settings.metrics.first_answer_wait)
        result = self._workloads.answer(trigger, self._clock())
        if result.availability is not Availability.OK:
            raise unavailable_answer(result, "/".join(trigger.key))
        return result

    def _metric_specs(self, request: pb.ScaledObjectRef) -> pb.GetMetricSpecResponse:
        """What GetMetricSpec answers, and what StreamMetricSpec streams: the two never disagree."""
        trigger = self._trigger(request)
        target = trigger.target_value
        spec = pb.MetricSpec(metricName=trigger.metric_name, targetSize=max(1, round(target)),
                             targetSizeFloat=target)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    @unary
    async def GetMetricSpec(self, request: pb.ScaledObjectRef, context) -> pb.GetMetricSpecResponse:
        return self._metric_specs(request)

    @streaming
    async def StreamMetricSpec(self, request: pb.ScaledObjectRef, context):
        """The current specs at once, then again whenever they change, checked every stream_check_interval.
        A trigger's specs follow from its metadata alone, which a stream cannot change, so in practice
        the first message is the only one until the stream ends (KEDA reopens it after a restart)."""
        last = None
        while True:
            specs = self._metric_specs(request)
            if specs != last:
                yield specs
                last = specs
            await asyncio.sleep(self._settings.server.stream_check_interval)

    @unary
    async def GetMetrics(self, request: pb.GetMetricsRequest, context) -> pb.GetMetricsResponse:
        trigger = self._trigger(request.scaledObjectRef)
        if request.metricName != trigger.metric_name:
            raise CallError(
                grpc.StatusCode.NOT_FOUND,
                f"metricName: {request.metricName!r} is not served for this trigger; "
                f"GetMetricSpec names it {trigger.metric_name!r}",
            )
        value = (await self._answer(trigger)).value
        return pb.GetMetricsResponse(metricValues=[
            pb.MetricValue(metricName=trigger.metric_name, metricValue=math.ceil(value), metricValueFloat=value)
        ])

    @unary
    async def IsActive(self, request: pb.ScaledObjectRef, context) -> pb.IsActiveResponse:
        trigger = self._trigger(request)
        value = (await self._answer(trigger)).value
        return pb.IsActiveResponse(result=value > trigger.activation_value)

    @streaming
    async def StreamIsActive(self, request: pb.ScaledObjectRef, context):
        """The current activity at once, then each change, checked every stream_check_interval."""
        last = None
        while True:
            trigger = self._trigger(request)
            active = (await self._answer(trigger)).value > trigger.activation_value
            if active != last:
                yield pb.IsActiveResponse(result=active)
                last = active
            await asyncio.sleep(self._settings.server.stream_check_interval)
