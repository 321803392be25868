"""A loopback gRPC server speaking google.monitoring.v3.MetricService/ListTimeSeries.

It serves in-memory time series the way Cloud Monitoring does: the filter is parsed (only
`key = "value"` clauses joined by AND; anything else is INVALID_ARGUMENT), points are bucketed into
alignment periods that end at the interval's end time, reduced across series (all of them, or per
combination of the `group_by_fields` values, each output series keeping only those labels), returned
newest first, and cut into pages of at most `page_size` points, so one series can continue on the
next page. A series is a GAUGE or a CUMULATIVE: as in Cloud Monitoring, ALIGN_RATE and ALIGN_DELTA
apply to cumulative series only and the other aligners to gauges only (INVALID_ARGUMENT otherwise;
DELTA series, which take both, are not modelled);
ALIGN_RATE is the period's increase per second (a fall is a reset, counted from zero), from the last
point before the period (or its first point) to its last.
The request and response types are the client library's own proto-plus messages.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service import MetricServiceClient
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.protobuf import timestamp_pb2

Aligner = monitoring_v3.Aggregation.Aligner
Reducer = monitoring_v3.Aggregation.Reducer
_CLAUSE = re.compile(r'\s*([a-z_.]+)\s*=\s*"([^"]*)"\s*')
_ALIGNERS = {
    Aligner.ALIGN_MEAN: lambda vs: sum(vs) / len(vs),
    Aligner.ALIGN_MAX: max,
    Aligner.ALIGN_MIN: min,
    Aligner.ALIGN_SUM: sum,
    Aligner.ALIGN_DELTA: lambda vs: vs[-1] - vs[0],
}
_REDUCERS = {
    Reducer.REDUCE_MEAN: lambda vs: sum(vs) / len(vs),
    Reducer.REDUCE_SUM: sum,
    Reducer.REDUCE_MAX: max,
    Reducer.REDUCE_MIN: min,
}


@dataclass
class StoredSeries:
    metric_type: str
    resource_type: str
    resource_labels: dict[str, str]
    metric_labels: dict[str, str] = field(default_factory=dict)
    points: list[tuple[int, float]] = field(default_factory=list)  # (unix seconds, value), any order
    integer: bool = False
    system_labels: dict[str, str] = field(default_factory=dict)  # metadata.system_labels (GKE's)
    kind: str = "GAUGE"  # or "CUMULATIVE" (a running total, such as core_usage_time)

    def __post_init__(self) -> None:
        # Cloud Monitoring keeps one point per series and time (it refuses a second write of one).
        self.points = sorted(dict(self.points).items())


class MetricServiceServer:
    """Start with `start()`, load with `add(...)`, read what the client sent in `requests`."""

    def __init__(self, page_size: int = 100_000):
        self.page_size = page_size
        self.series: list[StoredSeries] = []
        self.requests: list[monitoring_v3.ListTimeSeriesRequest] = []
        self.metadata: list[dict[str, str]] = []  # each call's gRPC metadata (authorization, ...)
        self.fail_with: tuple[grpc.StatusCode, str] | None = None  # every call aborts with this
        self.delay = 0.0  # seconds every call waits before answering
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    def add(self, series: StoredSeries) -> None:
        with self._lock:
            self.series.append(series)

    def start(self, tls: tuple[bytes, bytes] | None = None) -> MetricServiceServer:
        """Listen on loopback: plaintext, or TLS with `tls` = (certificate PEM, key PEM)."""
        handler = grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService",
            {
                "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                    self._list_time_series,
                    request_deserializer=monitoring_v3.ListTimeSeriesRequest.deserialize,
                    response_serializer=monitoring_v3.ListTimeSeriesResponse.serialize,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        if tls:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()

    def client(self, target: str | None = None) -> MetricServiceClient:
        """The real client library over an insecure loopback channel (Cloud Monitoring itself needs TLS)."""
        channel = grpc.insecure_channel(target or f"127.0.0.1:{self.port}")
        return MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))

    # -- the RPC ---------------------------------------------------------------------------------

    def _list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest, context: grpc.ServicerContext):
        with self._lock:
            self.requests.append(request)
            self.metadata.append(dict(context.invocation_metadata()))
            stored = list(self.series)
        if self.fail_with:
            context.abort(*self.fail_with)
        time.sleep(self.delay)
        if not re.fullmatch(r"projects/[^/]+", request.name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Name {request.name!r} is not a valid project name")
        try:
            wanted = _parse_filter(request.filter)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        start = _seconds(request.interval.start_time)
        end = _seconds(request.interval.end_time)
        if not end or start > end:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "The interval end time must be set and after its start")
        # Only points inside the interval (start, end] are read, aligned or not.
        matched = [dataclasses.replace(s, points=[(t, v) for t, v in s.points if start < t <= end])
                   for s in stored if _matches(s, wanted)]
        try:
            answered = _aggregate(matched, request.aggregation, start, end)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return self._page(answered, request.page_size or self.page_size, request.page_token)

    def _page(self, answered: list[tuple[StoredSeries, list[tuple[int, float]]]], size: int, token: str):
        size = min(size, self.page_size)
        flat = [(i, p) for i, (_, points) in enumerate(answered) for p in points]
        offset = int(token or 0)
        chunk = flat[offset : offset + size]
        response = monitoring_v3.ListTimeSeriesResponse()
        by_series: dict[int, list[tuple[int, float]]] = {}
        for i, p in chunk:
            by_series.setdefault(i, []).append(p)
        for i, points in by_series.items():
            response.time_series.append(_to_proto(answered[i][0], points))
        if offset + size < len(flat):
            response.next_page_token = str(offset + size)
        return response


def _parse_filter(text: str) -> dict[str, str]:
    wanted = {}
    for clause in re.split(r"\s+AND\s+", text.strip()):
        m = _CLAUSE.fullmatch(clause)
        if not m:
            raise ValueError(f"Could not parse filter {text!r}: unexpected {clause!r}")
        key = m.group(1).replace(".label.", ".labels.")
        prefixes = ("resource.labels.", "metric.labels.", "metadata.system_labels.")
        if not (key in ("metric.type", "resource.type") or key.startswith(prefixes)):
            raise ValueError(f"Could not parse filter {text!r}: unknown field {m.group(1)!r}")
        wanted[key] = m.group(2)
    if "metric.type" not in wanted:
        raise ValueError("A filter must select exactly one metric type: metric.type = \"...\"")
    return wanted


def _matches(s: StoredSeries, wanted: dict[str, str]) -> bool:
    fields = {"metric.type": s.metric_type, "resource.type": s.resource_type}
    fields |= {f"resource.labels.{k}": v for k, v in s.resource_labels.items()}
    fields |= {f"metric.labels.{k}": v for k, v in s.metric_labels.items()}
    fields |= {f"metadata.system_labels.{k}": v for k, v in s.system_labels.items()}
    return all(fields.get(k) == v for k, v in wanted.items())


def _aggregate(matched: list[StoredSeries], agg: monitoring_v3.Aggregation, start: int, end: int):
    aligner, reducer = agg.per_series_aligner, agg.cross_series_reducer
    period = int(agg.alignment_period.total_seconds()) if agg.alignment_period else 0
    if aligner == Aligner.ALIGN_NONE:
        if reducer != Reducer.REDUCE_NONE:
            raise ValueError("A cross-series reducer requires a per-series aligner")
        return [(s, sorted(s.points, reverse=True)) for s in matched]
    if aligner not in _ALIGNERS and aligner != Aligner.ALIGN_RATE:
        raise ValueError(f"The aligner {aligner.name} is not supported by this server")
    for s in matched:
        if (s.kind == "CUMULATIVE") != (aligner in (Aligner.ALIGN_RATE, Aligner.ALIGN_DELTA)):
            raise ValueError(f"The aligner {aligner.name} cannot be applied to metrics of kind {s.kind} "
                             f"({s.metric_type})")
    if period < 60:
        raise ValueError("The alignment period must be at least 60 seconds")
    ends = list(range(end, start, -period))  # newest first, as Cloud Monitoring answers
    aligned = []
    for s in matched:
        points = []
        for t in ends:
            if aligner == Aligner.ALIGN_RATE:
                value = _rate(s.points, t - period, t)
            else:
                vs = [v for ts, v in s.points if t - period < ts <= t]
                value = float(_ALIGNERS[aligner](vs)) if vs else None
            if value is not None:
                points.append((t, value))
        # A mean or a rate of integers is a DOUBLE, as Cloud Monitoring answers it.
        integer = s.integer and aligner not in (Aligner.ALIGN_MEAN, Aligner.ALIGN_RATE)
        aligned.append((dataclasses.replace(s, integer=integer, kind="GAUGE"), points))
    if reducer == Reducer.REDUCE_NONE or not aligned:
        return aligned
    if reducer not in _REDUCERS:
        raise ValueError(f"The reducer {reducer.name} is not supported by this server")
    groups: dict[tuple, list[tuple[StoredSeries, list[tuple[int, float]]]]] = {}
    for s, points in aligned:
        groups.setdefault(tuple(_field(s, f) for f in agg.group_by_fields), []).append((s, points))
    out = []
    for key, members in groups.items():
        by_time: dict[int, list[float]] = {}
        for _, points in members:
            for t, v in points:
                by_time.setdefault(t, []).append(v)
        head = members[0][0]
        kept = dict(zip(agg.group_by_fields, key, strict=True))
        merged = StoredSeries(head.metric_type, head.resource_type,
                              {k.split(".", 2)[2]: v for k, v in kept.items() if k.startswith("resource.")},
                              {k.split(".", 2)[2]: v for k, v in kept.items() if k.startswith("metric.")})
        out.append((merged, [(t, float(_REDUCERS[reducer](by_time[t]))) for t in sorted(by_time, reverse=True)]))
    return out


def _rate(points: list[tuple[int, float]], lo: int, hi: int) -> float | None:
    """Increase per second of a cumulative series over (lo, hi]; None without two points to compare."""
    inside = [(t, v) for t, v in points if lo < t <= hi]
    before = [(t, v) for t, v in points if t <= lo]
    run = before[-1:] + inside
    if not inside or len(run) < 2:
        return None
    increase = sum(b - a if b >= a else b for (_, a), (_, b) in zip(run, run[1:], strict=False))
    return increase / (run[-1][0] - run[0][0])


def _field(s: StoredSeries, name: str) -> str:
    """The value of a group_by field (`resource.labels.x`, `metric.labels.x`) of one series."""
    source, _, label = name.replace(".label.", ".labels.").partition(".labels.")
    if source == "resource" and label:
        return s.resource_labels.get(label, "")
    if source == "metric" and label:
        return s.metric_labels.get(label, "")
    raise ValueError(f"The group_by field {name!r} is not supported by this server")


def _to_proto(s: StoredSeries, points: list[tuple[int, float]]) -> monitoring_v3.TimeSeries:
    value_type = "INT64" if s.integer else "DOUBLE"
    return monitoring_v3.TimeSeries(
        metric={"type": s.metric_type, "labels": s.metric_labels},
        resource={"type": s.resource_type, "labels": s.resource_labels},
        metric_kind=s.kind,
        value_type=value_type,
        points=[
            {
                "interval": {"end_time": timestamp_pb2.Timestamp(seconds=t)},
                "value": {"int64_value": int(v)} if s.integer else {"double_value": v},
            }
            for t, v in points
        ],
    )


def _seconds(ts) -> int:
    return int(ts.timestamp()) if ts else 0
