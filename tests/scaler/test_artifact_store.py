"""The artifact store on a real S3 protocol (moto's server on loopback, s3fs as in production): versions are
published manifest-last, readers trust only complete ones, and serving picks up new versions without a restart."""

import asyncio
import json
import time
import uuid

import numpy as np
import pytest
import s3fs
from distributed import LocalCluster
from moto.server import ThreadedMotoServer

from helios.engine.artifacts import bundle
from helios.engine.models import create
from helios.engine.types import Series
from helios.scaler.cli import main
from helios.scaler.pb import admin_pb2
from helios.scaler.runtime.artifact_store import ArtifactStore

from ..helpers import daily_wave, fast_settings, write_trace
from .test_train import _train_what_the_test_servers_serve, scaled_object  # noqa: F401 - an autouse fixture

KEY = ("shop", "web", "helios-file-0123456789")


@pytest.fixture
def s3(monkeypatch):
    """A bucket on a local S3-compatible server; the AWS client libraries find it through their usual variables."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client would still point at the last test's server
    bucket = f"models-{uuid.uuid4().hex[:12]}"  # moto keeps its buckets in the process, across servers
    s3fs.S3FileSystem().mkdir(bucket)
    yield f"s3://{bucket}/helios"
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def a_bundle(level: float) -> dict[str, bytes]:
    t = np.arange(0, 300 * 48, 300, dtype=np.int64)
    data = Series(t, np.full(t.size, level))
    model = create("naive", step=300).fit(data)
    return bundle(model, workload="/".join(KEY), trained_at=time.time(), data=data, scores={"mase": 1.0},
                  versions={})


def test_versions_round_trip_through_s3_newest_complete_first(s3):
    store = ArtifactStore(s3)
    assert store.latest_complete(KEY) is None
    first = store.write(KEY, a_bundle(1.0))
    time.sleep(1.1)  # version names carry the second they were written in
    second = store.write(KEY, a_bundle(2.0))
    assert store.versions(KEY) == [first, second]
    version, files = store.latest_complete(KEY)
    assert version == second and json.loads(files["model.json"])["state"]["pattern"] == [2.0]
    assert store.latest_complete(KEY, newer_than=second) is None  # nothing newer than what a replica has


def test_a_version_without_its_manifest_or_with_a_mismatching_file_is_never_read(s3):
    store = ArtifactStore(s3)
    good = store.write(KEY, a_bundle(1.0))
    fs = s3fs.S3FileSystem()
    folder = f"{s3}/{'/'.join(KEY)}"
    files = a_bundle(3.0)
    writing = "99990101T000000Z-aaaaaa"  # a writer between its files and its manifest
    for name in ("model.json", "metrics.json", "data.json"):
        fs.pipe_file(f"{folder}/{writing}/{name}", files[name])
    assert store.latest_complete(KEY)[0] == good
    torn = "99990101T000001Z-bbbbbb"  # the manifest landed, a file was cut short
    for name, content in files.items():
        fs.pipe_file(f"{folder}/{torn}/{name}", content[:50] if name == "model.json" else content)
    assert store.latest_complete(KEY)[0] == good
    fs.pipe_file(f"{folder}/{writing}/manifest.json", files["manifest.json"])  # the first writer finishes
    version, got = store.latest_complete(KEY)
    assert version == writing and got == files


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


async def test_train_to_s3_and_serving_adopts_each_new_version_without_a_restart(
    s3, scheduler, tmp_path, start_app, client_for
):
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    md = {"source": "file", "path": str(trace), "targetValue": "10"}
    so = str(scaled_object(tmp_path, {"web": md}))
    assert await asyncio.to_thread(main, ["train", so, "--out", s3, "--scheduler", scheduler]) == 0
    app = await start_app(fast_settings(
        metrics={"refresh_interval": 0.2}, models={"artifacts": s3, "artifacts_poll_interval": 0.2}))
    client = client_for(app)
    value = await client.get_metrics(md, name="web")
    key = ("shop", "web", value.metricName)
    store = ArtifactStore(s3)
    (first,) = store.versions(key)

    async def served_version() -> str:
        (row,) = (await client.admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5)).workloads
        return row.model_version

    assert await served_version() == first
    await asyncio.sleep(1.1)  # the next version's name is a later second
    assert await asyncio.to_thread(main, ["train", so, "--out", s3, "--scheduler", scheduler]) == 0
    second = store.versions(key)[-1]
    assert second > first
    deadline = time.monotonic() + 10
    while await served_version() != second and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await served_version() == second
    assert (await client.get_metrics(md, name="web")).metricValueFloat > 0
