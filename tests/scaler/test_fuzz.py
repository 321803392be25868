"""Property-based fuzzing of everything a caller controls: scalerMetadata, admin requests, CSV input.

Against a real `helios serve` process: every answer is OK or a clear INVALID_ARGUMENT (NOT_FOUND or
UNAVAILABLE where the workload or its data may not exist yet), never INTERNAL, never a hang, and the
process is alive at the end. Admin requests are generated from the proto descriptors, so fuzzing a new
RPC is one more name in ADMIN_RPCS.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios.adapters.file import FileParams, FileSource
from helios.engine.errors import SourceError
from helios.scaler.pb import admin_pb2, admin_pb2_grpc
from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

from ..helpers import FILE_ROOTS_ENV

ADMIN_RPCS = ["Predict", "ListWorkloads", "Detect", "Recommend", "ListModels", "Explain"]
ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.UNAVAILABLE}
CALL_TIMEOUT = 10  # a hang fails the example instead of the whole run
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
HELIOS = str(Path(sys.executable).parent / "helios")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real `helios serve` for the module; yields a channel to it and checks it is still alive after."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, **FILE_ROOTS_ENV, "HELIOS_SECURITY__HEALTH_PORT": "0",
           "HELIOS_METRICS__FIRST_ANSWER_WAIT": "0.5", "HELIOS_MODELS__FIT_TIMEOUT": "10s"}
    with open(folder / "helios.log", "w") as log:
        proc = subprocess.Popen([HELIOS, "serve", "--grpc-port", "0", "--metrics-port", "0"], env=env,
                                stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"helios serving.*?grpc_port\W+(\d+)", (folder / "helios.log").read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "helios.log").read_text()
            time.sleep(0.1)
        with grpc.insecure_channel(f"127.0.0.1:{m.group(1)}") as channel:
            yield channel, folder
        assert proc.poll() is None, "helios serve died under fuzzing"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def answered(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() in ANSWERS, f"{e.code()}: {e.details()} for {request}"
        return e.code()
    return grpc.StatusCode.OK


# --- scalerMetadata: the keys Helios knows, KEDA's own, and anything else; plausible and absurd values

KEYS = ["source", "targetValue", "activationValue", "horizon", "leadTime", "model", "quantile", "mode", "metricName",
        "path", "replay", "scalerAddress", "enableTLS", "unsafeSsl"]
VALUES = st.one_of(
    st.sampled_from(["demo", "file", "prometheus", "baseline", "naive", "auto", "act", "observe", "true", "false",
                     "5m", "30m", "1h30m", "7d", "8d", "0s", "-5m", "0.9", "0.5", "1", "0", "-1", "50", "1e308",
                     "nan", "inf", "-inf", "", " ", "helios-x", "/dev/null", "/etc/passwd", "/nonexistent.csv"]),
    st.text(max_size=40),
)
METADATA = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=15)), VALUES, max_size=8)
NAMES = st.one_of(st.just("web"), st.text(max_size=30))


@FUZZ
@given(metadata=METADATA, name=NAMES, namespace=NAMES)
def test_scaler_metadata_never_gets_an_internal_error(server, metadata, name, namespace):
    channel, _ = server
    stub = pb_grpc.ExternalScalerStub(channel)
    ref = pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)
    try:
        spec = stub.GetMetricSpec(ref, timeout=CALL_TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{e.code()}: {e.details()}"
        assert e.details()  # says what is wrong
        return
    (metric,) = spec.metricSpecs
    assert metric.targetSizeFloat > 0 and math.isfinite(metric.targetSizeFloat)
    answered(stub.GetMetrics, pb.GetMetricsRequest(scaledObjectRef=ref, metricName=metric.metricName))
    answered(stub.IsActive, ref)


# --- admin requests, generated from each RPC's request message descriptor

SCALARS = {
    FieldDescriptor.TYPE_STRING: st.one_of(st.sampled_from(["", "5m", "1h", "web", "shop", "baseline", "auto", "-1s",
                                                            "prophet", "zscore", "xgboost"]), st.text(max_size=20)),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(allow_nan=True, allow_infinity=True, width=32),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
}


def messages(descriptor, depth: int = 0) -> st.SearchStrategy:
    """Any message of this type: each field set or not, repeated fields short, nesting bounded."""
    cls = _message_class(descriptor)
    fields = {}
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            if f.message_type.GetOptions().map_entry:
                value = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)
            else:
                value = messages(f.message_type, depth + 1)
        elif f.type == FieldDescriptor.TYPE_ENUM:
            value = st.sampled_from([v.number for v in f.enum_type.values])
        else:
            value = SCALARS.get(f.type, st.nothing())
        if _repeated(f) and not (f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry):
            value = st.lists(value, max_size=40 if f.name == "samples" else 4)
        fields[f.name] = st.one_of(st.none(), value)

    def build(values: dict) -> object:
        msg = cls()
        for name, value in values.items():
            if value is None:
                continue
            field = getattr(msg, name)
            if isinstance(value, dict):
                field.update(value)
            elif isinstance(value, list):
                field.extend(value) if not value or not hasattr(value[0], "DESCRIPTOR") else \
                    [field.add().CopyFrom(v) for v in value]
            elif hasattr(value, "DESCRIPTOR"):
                field.CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries(fields).map(build)


def _repeated(f: FieldDescriptor) -> bool:
    return f.is_repeated if hasattr(f, "is_repeated") else f.label == FieldDescriptor.LABEL_REPEATED


def _message_class(descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


ADMIN = admin_pb2.DESCRIPTOR.services_by_name["Admin"]


@pytest.mark.parametrize("rpc", ADMIN_RPCS)
def test_admin_requests_never_get_an_internal_error(server, rpc):
    channel, _ = server
    stub = admin_pb2_grpc.AdminStub(channel)
    method = ADMIN.methods_by_name[rpc]

    @FUZZ
    @given(request=messages(method.input_type))
    def fuzz(request):
        answered(getattr(stub, rpc), request)

    fuzz()


# --- CSV input: what a file source reads, straight and through the server

ROWS = st.lists(st.tuples(
    st.one_of(st.integers(-(2**40), 2**40).map(str), st.sampled_from(["2024-01-01T00:00:00Z", "yesterday", "", "1e3"]),
              st.text(max_size=12)),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["", "NaN", "1,5", "x"]),
              st.text(max_size=8)),
), max_size=30)
CSV = st.builds(lambda header, rows, sep: (header + "\n" if header else "") + "\n".join(sep.join(r) for r in rows),
                st.sampled_from(["timestamp,value", "", "value,timestamp", "time;value"]), ROWS,
                st.sampled_from([",", ";", ",,", "\t"]))


@FUZZ
@given(content=CSV)
def test_csv_input_is_read_or_refused_with_a_source_error(tmp_path, content):
    path = tmp_path / "trace.csv"
    path.write_text(content)
    now = int(time.time())
    try:
        series = FileSource().fetch(FileParams(path=str(path)), now - 86400, now, 300)
    except SourceError as e:
        assert str(e)
        return
    assert all(math.isfinite(v) for v in series.values if not math.isnan(v))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=CSV)
def test_csv_input_through_the_server_never_gets_an_internal_error(server, content):
    channel, folder = server
    path = folder / f"trace-{time.monotonic_ns()}.csv"  # a new workload per example
    path.write_text(content)
    stub = pb_grpc.ExternalScalerStub(channel)
    ref = pb.ScaledObjectRef(name="csv", namespace="fuzz", scalerMetadata={
        "source": "file", "path": str(path), "targetValue": "10"})
    spec = stub.GetMetricSpec(ref, timeout=CALL_TIMEOUT)
    answered(stub.GetMetrics, pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName))
