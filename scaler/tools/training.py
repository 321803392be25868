"""Training fan-out on Dask distributed: one independent task per workload, each writing its own version.

Local by default (a `distributed.LocalCluster` of worker processes, one thread each: Prophet and pandas
hold the GIL), or a running Dask cluster given its scheduler address. Workers fetch history through the
trigger's source and write to the artifact store themselves, so the client never holds the models and a
cluster can write straight to an object store. A workload that fails is reported in the run summary and
never stops the others.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from helios.adapters import SOURCES
from helios.engine.align import align
from helios.engine.artifacts import bundle
from helios.engine.backtest import backtest
from helios.engine.models import MODELS, create

from ..config.metadata import MetadataParser, TriggerSpec
from ..config.settings import ModelsSettings, Settings
from ..runtime.artifact_store import ArtifactStore

log = logging.getLogger(__name__)

LIBRARIES = ("helios-scaler", "numpy", "pandas", "prophet", "xgboost-cpu")
MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Job:
    """What a worker needs to train one workload (small and picklable: no Settings, no clients)."""

    trigger: TriggerSpec
    models: ModelsSettings
    step: int
    history: float
    store_url: str
    origins: int


@dataclass
class RunSummary:
    started: float
    scheduler: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    finished: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if "error" in r]

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "finished": self.finished, "scheduler": self.scheduler,
                "workloads": len(self.rows), "trained": len(self.rows) - len(self.failed),
                "failed": len(self.failed), "results": sorted(self.rows, key=lambda r: r["workload"])}


def manifest_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, and those under the folders named (recursively), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        else:
            found.append(path)
    return found


def read_triggers(paths: Iterable[Path], settings: Settings) -> list[TriggerSpec]:
    """Every `type: external` trigger of every ScaledObject in the files and folders given (multi-document
    YAML too), validated as serving validates them."""
    parse = MetadataParser({n: cls() for n, cls in SOURCES.items()}, settings.models, MODELS, settings.provisioning,
                           settings.scaling.pod_startup_seconds)
    files = manifest_files(paths)
    triggers = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "ScaledObject":
                continue
            meta = doc.get("metadata") or {}
            for t in (doc.get("spec") or {}).get("triggers") or []:
                if t.get("type") in ("external", "external-push"):
                    md = {k: str(v) for k, v in (t.get("metadata") or {}).items()}
                    triggers.append(parse(meta.get("namespace", "default"), meta["name"], md))
    if not triggers:
        raise ValueError(f"no ScaledObject with an external trigger in {', '.join(map(str, files)) or 'nothing'}")
    return triggers


def train_one(job: Job) -> dict[str, Any]:
    """Fetch, fit, backtest and store one workload; runs on a Dask worker. Never raises: a failure is
    returned as the row's `error`, so one bad workload is reported rather than retried or fatal."""
    trigger = job.trigger
    row: dict[str, Any] = {"workload": "/".join(trigger.key), "model": trigger.model}
    try:
        row |= _train(job)
    except Exception as e:  # noqa: BLE001 - every failure is this workload's result
        row["error"] = f"{e.__class__.__name__}: {e}"
    return row


def _train(job: Job) -> dict[str, Any]:
    trigger, step = job.trigger, job.step
    horizon = max(1, math.ceil(trigger.horizon / step))
    now = time.time()
    history = align(_source(trigger.source).fetch(trigger.source_params, int(now - job.history), int(now), step),
                    step)
    params = job.models.params_for(trigger.model, horizon, trigger.quantile)
    started = time.perf_counter()
    model = create(trigger.model, **params, step=step).fit(history)
    fit_seconds = time.perf_counter() - started
    scores = backtest(history, trigger.model, horizon, job.origins, params=params).as_dict()
    scores["fit_seconds"] = fit_seconds
    files = bundle(model, workload="/".join(trigger.key), trained_at=now, data=history, scores=scores,
                   versions={lib: _version(lib) for lib in LIBRARIES})
    version = ArtifactStore(job.store_url).write(trigger.key, files)
    return {**scores, "forecast_model": model.describe().get("chosen", model.name), "version": version}


_sources: dict[str, object] = {}  # per worker process: sources keep clients and caches between tasks


def _source(name: str):
    if name not in _sources:
        _sources[name] = SOURCES[name]()
    return _sources[name]


def train_all(
    triggers: list[TriggerSpec], settings: Settings, store_url: str, *, scheduler: str | None = None,
    workers: int = 2, origins: int = 5, on_result: Callable[[dict, int, int], None] | None = None,
) -> RunSummary:
    """Train every trigger as its own Dask task on `scheduler` (a LocalCluster of `workers` processes
    when None); `on_result(row, done, total)` is called as each one finishes."""
    from distributed import as_completed  # imported here: `helios serve` never needs Dask

    jobs = [Job(t, settings.models, int(settings.metrics.step), settings.metrics.history, store_url, origins)
            for t in triggers]
    with _client(scheduler, workers) as client:
        summary = RunSummary(started=time.time(), scheduler=client.scheduler.address)
        # pure=False: two runs of the same trigger are two trainings (new data), never a cached result.
        futures = client.map(train_one, jobs, pure=False, key=[f"train-{'/'.join(j.trigger.key)}" for j in jobs])
        labels = {f.key: "/".join(j.trigger.key) for f, j in zip(futures, jobs, strict=True)}
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as e:  # noqa: BLE001 - the task itself was lost (worker died, cancelled)
                row = {"workload": labels[future.key], "error": f"{e.__class__.__name__}: {e}"}
            summary.rows.append(row)
            if on_result is not None:
                on_result(row, len(summary.rows), len(jobs))
    summary.finished = time.time()
    ArtifactStore(store_url).write_document(f"_runs/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json",
                                            summary.as_dict())
    return summary


class _client:
    """A Client to `scheduler`, or to a LocalCluster of its own that it closes with itself."""

    def __init__(self, scheduler: str | None, workers: int) -> None:
        self._scheduler, self._workers = scheduler, workers
        self._cluster = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self._scheduler is None:
            self._cluster = LocalCluster(n_workers=self._workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.WARNING)
            self._client = Client(self._cluster)
        else:
            self._client = Client(self._scheduler, timeout="30s")
        return self._client

    def __exit__(self, *exc) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


class Progress:
    """A progress bar on a terminal (tqdm); otherwise a log line at every tenth of the run and at the end."""

    def __init__(self, total: int, stream=None) -> None:
        stream = stream or sys.stderr
        self._total, self._stream, self._failed = total, stream, 0
        self._bar = None
        if stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="workload", file=stream)
        self._every = max(1, total // 10)

    def __call__(self, row: dict, done: int, total: int) -> None:
        self._failed += "error" in row
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(failed=self._failed)
        elif done % self._every == 0 or done == total:
            print(f"helios train: {done}/{total} workloads done, {self._failed} failed", file=self._stream,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _version(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "absent"
