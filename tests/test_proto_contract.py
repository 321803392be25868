"""proto/externalscaler.proto is KEDA's wire contract, field by field (DESIGN.md, KEDA v2.17+)."""

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from helios.scaler.pb import externalscaler_pb2

ROOT = Path(__file__).resolve().parents[1]
F = descriptor_pb2.FieldDescriptorProto

CONTRACT = {  # message -> field -> (number, type, repeated)
    "ScaledObjectRef": {"name": (1, F.TYPE_STRING, False), "namespace": (2, F.TYPE_STRING, False),
                        "scalerMetadata": (3, F.TYPE_MESSAGE, True)},
    "IsActiveResponse": {"result": (1, F.TYPE_BOOL, False)},
    "GetMetricSpecResponse": {"metricSpecs": (1, F.TYPE_MESSAGE, True)},
    "MetricSpec": {"metricName": (1, F.TYPE_STRING, False), "targetSize": (2, F.TYPE_INT64, False),
                   "targetSizeFloat": (3, F.TYPE_DOUBLE, False)},
    "GetMetricsRequest": {"scaledObjectRef": (1, F.TYPE_MESSAGE, False), "metricName": (2, F.TYPE_STRING, False)},
    "GetMetricsResponse": {"metricValues": (1, F.TYPE_MESSAGE, True)},
    "MetricValue": {"metricName": (1, F.TYPE_STRING, False), "metricValue": (2, F.TYPE_INT64, False),
                    "metricValueFloat": (3, F.TYPE_DOUBLE, False)},
}
RPCS = {  # rpc -> (input, output, server streaming)
    "IsActive": ("ScaledObjectRef", "IsActiveResponse", False),
    "StreamIsActive": ("ScaledObjectRef", "IsActiveResponse", True),
    "GetMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", False),
    "GetMetrics": ("GetMetricsRequest", "GetMetricsResponse", False),
    # KEDA's main branch (8b4f083, 2026-08): external-push scalers open it; older KEDA never calls it.
    "StreamMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse", True),
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> descriptor_pb2.FileDescriptorProto:
    """Compile the .proto itself (not the generated module) so the check reads what KEDA would."""
    out = tmp_path_factory.mktemp("proto") / "set.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--descriptor_set_out={out}", "externalscaler.proto"], check=True)
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]


def test_package_and_service(compiled):
    assert compiled.package == "externalscaler"
    assert [s.name for s in compiled.service] == ["ExternalScaler"]


@pytest.mark.parametrize("message", sorted(CONTRACT))
def test_message_fields_match_keda(compiled, message):
    m = {msg.name: msg for msg in compiled.message_type}[message]
    fields = {f.name: (f.number, f.type, f.label == F.LABEL_REPEATED) for f in m.field}
    assert fields == CONTRACT[message]


def test_scaler_metadata_is_a_string_to_string_map(compiled):
    ref = {m.name: m for m in compiled.message_type}["ScaledObjectRef"]
    entry = ref.nested_type[0]
    assert entry.options.map_entry
    assert [(f.name, f.type) for f in entry.field] == [("key", F.TYPE_STRING), ("value", F.TYPE_STRING)]


def test_rpcs_match_keda(compiled):
    methods = {m.name: m for m in compiled.service[0].method}
    assert set(methods) == set(RPCS)
    for name, (request, response, streaming) in RPCS.items():
        m = methods[name]
        assert (m.input_type, m.output_type) == (f".externalscaler.{request}", f".externalscaler.{response}")
        assert m.server_streaming == streaming and not m.client_streaming


def test_the_generated_module_serves_the_same_contract(compiled):
    served = descriptor_pb2.FileDescriptorProto()
    externalscaler_pb2.DESCRIPTOR.CopyToProto(served)
    served.name = compiled.name  # only the virtual import path differs
    expected = descriptor_pb2.FileDescriptorProto()
    expected.CopyFrom(compiled)
    for message in expected.message_type:  # protoc fills in default JSON names; the runtime omits them
        for field in (*message.field, *(f for nested in message.nested_type for f in nested.field)):
            field.ClearField("json_name")
    assert served == expected
