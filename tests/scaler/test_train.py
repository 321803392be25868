"""`helios train` fans out over a real Dask cluster, writes versioned, verifiable artifacts; serve starts from them."""

import asyncio
import json

import numpy as np
import pytest
import yaml
from distributed import LocalCluster

from helios.scaler.cli import main
from helios.scaler.pb import admin_pb2
from helios.scaler.runtime.artifact_store import ArtifactStore

from ..helpers import daily_wave, fast_settings, sample_value, write_trace


@pytest.fixture(scope="module")
def scheduler():
    """One real in-process Dask cluster of two workers for the module: `--scheduler` reaches it as any cluster."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(autouse=True)
def _train_what_the_test_servers_serve(monkeypatch):
    """`helios train` reads the settings serve would: pin its model to the tests' servers' (fast_settings)."""
    monkeypatch.setenv("HELIOS_MODELS__DEFAULT", "baseline")


def train(*args: str, scheduler: str) -> int:
    return main(["train", *args, "--scheduler", scheduler])


def scaled_object(tmp_path, triggers: dict[str, dict], filename="scaledobjects.yaml"):
    docs = [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "shop"},
             "spec": {"scaleTargetRef": {"name": name}, "triggers": [{"type": "external", "metadata": md}]}}
            for name, md in triggers.items()]
    path = tmp_path / filename
    path.write_text(yaml.safe_dump_all(docs))
    return path


def fits(client, operation, model="baseline"):
    return sample_value(client.scrape(), "helios_model_fit_duration_seconds_count", model=model,
                        operation=operation) or 0


def test_train_writes_one_complete_version_per_workload_and_reports_failures(tmp_path, capsys, scheduler):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    so = scaled_object(tmp_path, {
        "web": {"source": "file", "path": str(trace), "targetValue": "10"},
        "gone": {"source": "file", "path": str(tmp_path / "missing.csv"), "targetValue": "10"},
        "short": {"source": "file", "path": str(write_trace(tmp_path / "short.csv", [5.0] * 10)), "targetValue": "1"},
        "api": {"source": "file", "path": str(trace), "targetValue": "10", "model": "naive"},
    })
    assert train(str(so), "--out", str(tmp_path / "art"), scheduler=scheduler) == 1  # some workloads failed
    captured = capsys.readouterr()
    assert "shop/gone/" in captured.out and "failed: SourceUnavailable" in captured.out
    assert "no such file" in captured.out
    assert "shop/short/" in captured.out and "too short for a 6-step backtest" in captured.out  # its fit failed
    assert "2 of 4 workloads trained, 2 failed" in captured.out
    assert "4/4 workloads done, 2 failed" in captured.err  # progress lines, not a bar: stderr is no terminal
    store = ArtifactStore(str(tmp_path / "art"))
    keys = sorted(tuple(p.relative_to(tmp_path / "art").parts[:3]) for p in (tmp_path / "art").glob("shop/*/*"))
    assert [k[1] for k in keys] == ["api", "web"]
    version, files = store.read_latest(keys[1])
    assert set(files) == {"manifest.json", "model.json", "metrics.json", "data.json"}
    metrics = json.loads(files["metrics.json"])
    assert {"mae", "mase", "coverage_80", "pinball_90", "fit_seconds"} <= set(metrics)
    assert json.loads(files["data.json"])["samples"] >= 500
    (run,) = (tmp_path / "art" / "_runs").glob("*.json")  # the run summary, beside the models
    summary = json.loads(run.read_text())
    assert (summary["workloads"], summary["trained"], summary["failed"]) == (4, 2, 2)
    assert [r["workload"].split("/")[1] for r in summary["results"] if "error" in r] == ["gone", "short"]


def test_train_reads_folders_and_multi_document_files_on_a_local_cluster_of_processes(tmp_path, capsys):
    """No --scheduler: Helios starts its own LocalCluster of worker processes."""
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    folder = tmp_path / "manifests"
    (folder / "team").mkdir(parents=True)
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    scaled_object(folder, {"a": md, "b": {**md, "model": "naive"}}, filename="two.yaml")
    scaled_object(folder / "team", {"c": md}, filename="one.yml")
    (folder / "notes.txt").write_text("not a manifest")
    assert main(["train", str(folder), "--out", str(tmp_path / "art"), "--workers", "2"]) == 0
    assert "3 of 3 workloads trained, 0 failed" in capsys.readouterr().out
    assert sorted(p.parts[-2] for p in (tmp_path / "art" / "shop").glob("*/*")) == ["a", "b", "c"]


def test_bad_input_to_train_is_a_clear_error(tmp_path, capsys, scheduler):
    empty = tmp_path / "none.yaml"
    empty.write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    assert train(str(empty), "--out", str(tmp_path / "art"), scheduler=scheduler) == 2
    assert "no ScaledObject with an external trigger" in capsys.readouterr().err
    so = scaled_object(tmp_path, {"web": {"source": "file", "targetValue": "-1"}})
    assert train(str(so), "--out", str(tmp_path / "art"), scheduler=scheduler) == 2
    err = capsys.readouterr().err
    assert "targetValue='-1'" in err and "path: required" in err
    good = scaled_object(tmp_path, {"web": {"source": "file", "path": str(tmp_path / "x.csv"), "targetValue": "1"}})
    assert main(["train", str(good), "--out", str(tmp_path / "art"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "helios train:" in capsys.readouterr().err  # no scheduler there: said plainly, nothing trained


async def test_serve_starts_from_the_trained_model_without_fitting(start_app, client_for, tmp_path, scheduler):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    assert train(str(scaled_object(tmp_path, {"web": md})), "--out", str(tmp_path / "art"), scheduler=scheduler) == 0
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    value = await client.get_metrics(md, name="web")
    assert value.metricValueFloat > 0
    assert (fits(client, "fit"), fits(client, "update")) == (0, 1)
    (row,) = (await client.admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5)).workloads
    key = ("shop", "web", value.metricName)
    assert row.model_version == ArtifactStore(str(tmp_path / "art")).versions(key)[-1]
    assert row.backtest_scores["mase"] > 0 and 0 <= row.backtest_scores["coverage_80"] <= 1


async def test_a_truncated_or_half_written_artifact_is_skipped_and_the_workload_fits_afresh(
    start_app, client_for, tmp_path, caplog, scheduler
):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    assert train(str(scaled_object(tmp_path, {"web": md})), "--out", str(tmp_path / "art"), scheduler=scheduler) == 0
    (folder,) = (tmp_path / "art").glob("shop/web/*/*")
    model_file = folder / "model.json"
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated mid-write
    newer = folder.parent / "99999999T000000Z-abcdef"  # a writer that stopped before its manifest
    newer.mkdir()
    (newer / "model.json").write_bytes(b"{")
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    assert (await client.get_metrics(md, name="web")).metricValueFloat > 0
    await asyncio.sleep(0.2)
    assert fits(client, "fit") == 1
    skipped = {getattr(r, "version", ""): getattr(r, "error", "") for r in caplog.records
               if "skipping incomplete model version" in r.message}
    assert "no manifest.json" in skipped[newer.name] and "SHA-256" in skipped[folder.name]


async def test_a_model_trained_for_other_settings_is_not_used(start_app, client_for, tmp_path, scheduler):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    trained = {**md, "model": "naive"}
    so = scaled_object(tmp_path, {"web": trained})
    assert train(str(so), "--out", str(tmp_path / "art"), scheduler=scheduler) == 0
    app = await start_app(fast_settings(models={"artifacts": str(tmp_path / "art")}))
    client = client_for(app)
    await client.get_metrics(md, name="web")  # served with the default model, baseline
    assert fits(client, "fit") == 1 and np.isfinite(next(iter(app.store.all())).forecast.point).all()
