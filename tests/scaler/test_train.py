"""`helios train` writes versioned, verifiable artifacts; `helios serve` starts from them."""

import asyncio
import json

import numpy as np
import yaml

from helios.scaler.artifact_store import ArtifactStore
from helios.scaler.cli import main
from helios.scaler.pb import admin_pb2

from ..helpers import daily_wave, fast_settings, sample_value, write_trace


def scaled_object(tmp_path, triggers: dict[str, dict]):
    docs = [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "shop"},
             "spec": {"scaleTargetRef": {"name": name}, "triggers": [{"type": "external", "metadata": md}]}}
            for name, md in triggers.items()]
    path = tmp_path / "scaledobjects.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def fits(client, operation, model="baseline"):
    return sample_value(client.scrape(), "helios_model_fit_duration_seconds_count", model=model,
                        operation=operation) or 0


def test_train_writes_one_complete_version_per_workload_and_reports_failures(tmp_path, capsys):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    so = scaled_object(tmp_path, {
        "web": {"source": "file", "path": str(trace), "targetValue": "10"},
        "gone": {"source": "file", "path": str(tmp_path / "missing.csv"), "targetValue": "10"},
    })
    assert main(["train", str(so), "--out", str(tmp_path / "art")]) == 1  # one workload failed
    out = capsys.readouterr().out
    assert "shop/gone/" in out and "failed: " in out and "no such file" in out
    store = ArtifactStore(tmp_path / "art")
    (key,) = [tuple(p.relative_to(store.root).parts[:3]) for p in store.root.glob("*/*/*")]
    assert key[:2] == ("shop", "web")
    version, files = store.read_latest(key)
    assert set(files) == {"manifest.json", "model.json", "metrics.json", "data.json"}
    metrics = json.loads(files["metrics.json"])
    assert {"mae", "mase", "coverage_80", "pinball_90", "fit_seconds"} <= set(metrics)
    assert json.loads(files["data.json"])["samples"] >= 500


def test_bad_input_to_train_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "none.yaml"
    empty.write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    assert main(["train", str(empty), "--out", str(tmp_path / "art")]) == 2
    assert "no ScaledObject with an external trigger" in capsys.readouterr().err
    so = scaled_object(tmp_path, {"web": {"source": "file", "targetValue": "-1"}})
    assert main(["train", str(so), "--out", str(tmp_path / "art")]) == 2
    err = capsys.readouterr().err
    assert "targetValue='-1'" in err and "path: required" in err


async def test_serve_starts_from_the_trained_model_without_fitting(start_app, client_for, tmp_path):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    assert main(["train", str(scaled_object(tmp_path, {"web": md})), "--out", str(tmp_path / "art")]) == 0
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    value = await client.get_metrics(md, name="web")
    assert value.metricValueFloat > 0
    assert (fits(client, "fit"), fits(client, "update")) == (0, 1)
    (row,) = (await client.admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5)).workloads
    key = ("shop", "web", value.metricName)
    assert row.model_version == ArtifactStore(tmp_path / "art").versions(key)[-1]
    assert row.backtest_scores["mase"] > 0 and 0 <= row.backtest_scores["coverage_80"] <= 1


async def test_a_truncated_or_half_written_artifact_is_refused_and_the_workload_fits_afresh(
    start_app, client_for, tmp_path, caplog
):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    assert main(["train", str(scaled_object(tmp_path, {"web": md})), "--out", str(tmp_path / "art")]) == 0
    store = ArtifactStore(tmp_path / "art")
    (folder,) = store.root.glob("shop/web/*/*")
    model_file = folder / "model.json"
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated mid-write
    (folder.parent / ".tmp-99999999T000000Z-abcdef").mkdir()  # a crash while writing a newer one
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    assert (await client.get_metrics(md, name="web")).metricValueFloat > 0
    await asyncio.sleep(0.2)
    assert fits(client, "fit") == 1
    assert any("refusing stored model" in r.message and "SHA-256" in getattr(r, "error", "") for r in caplog.records)


async def test_a_model_trained_for_other_settings_is_not_used(start_app, client_for, tmp_path):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    trained = {**md, "model": "naive"}
    assert main(["train", str(scaled_object(tmp_path, {"web": trained})), "--out", str(tmp_path / "art")]) == 0
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    await client.get_metrics(md, name="web")  # served with the default model, baseline
    assert fits(client, "fit") == 1 and np.isfinite(next(iter(app.store.all())).forecast.point).all()
