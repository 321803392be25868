"""`helios train SCALEDOBJECT.yaml... --out DIR`: fit each external trigger's model and store it.

The triggers are read from ScaledObject manifests (those of `type: external`), so training sees exactly
the metadata that serving will. History comes through the trigger's own source. Each workload gets a
new artifact version (model, backtest scores, data summary, manifest); one failing workload is
reported and does not stop the others.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

from helios.adapters import SOURCES
from helios.engine.align import align
from helios.engine.artifacts import bundle
from helios.engine.backtest import backtest
from helios.engine.errors import HeliosError
from helios.engine.models import MODELS, create

from .artifact_store import ArtifactStore
from .metadata import InvalidMetadata, MetadataParser, TriggerSpec
from .settings import ConfigError, Settings, load_settings

LIBRARIES = ("helios-scaler", "numpy", "pandas", "prophet", "xgboost-cpu")


def register(commands) -> None:
    p = commands.add_parser("train", help="fit the models of ScaledObjects' Helios triggers and store them")
    p.add_argument("manifests", nargs="+", metavar="SCALEDOBJECT.yaml", help="ScaledObject manifests")
    p.add_argument("--out", required=True, metavar="DIR", help="artifact folder (serve reads it: models.artifacts)")
    p.add_argument("--config", metavar="FILE", help="the YAML configuration serve uses")
    p.add_argument("--backtest-origins", type=int, default=5, help="origins of the backtest stored with the model")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        triggers = read_triggers([Path(m) for m in args.manifests], settings)
    except (ConfigError, InvalidMetadata, ValueError, OSError) as e:
        print(f"helios train: {e}", file=sys.stderr)
        return 2
    store = ArtifactStore(args.out)
    sources = {name: cls() for name, cls in SOURCES.items()}
    failed = 0
    print("| workload | model | forecast model | mase | coverage_80 | fit s | version |\n|---|---|---|---|---|---|---|")
    for trigger in triggers:
        workload = "/".join(trigger.key)
        try:
            row = train_one(trigger, settings, sources, store, args.backtest_origins)
        except (HeliosError, ValueError) as e:
            failed += 1
            print(f"| {workload} | {trigger.model} | failed: {e} | | | | |")
            continue
        print(f"| {workload} | {trigger.model} | {row['forecast_model']} | {row['mase']:.3g} | "
              f"{row['coverage_80']:.2f} | {row['fit_seconds']:.2f} | {row['version']} |")
    return 1 if failed else 0


def read_triggers(paths: list[Path], settings: Settings) -> list[TriggerSpec]:
    parse = MetadataParser({n: cls() for n, cls in SOURCES.items()}, settings.models, MODELS)
    triggers = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "ScaledObject":
                continue
            meta = doc.get("metadata", {})
            for t in doc.get("spec", {}).get("triggers", []):
                if t.get("type") in ("external", "external-push"):
                    md = {k: str(v) for k, v in (t.get("metadata") or {}).items()}
                    triggers.append(parse(meta.get("namespace", "default"), meta["name"], md))
    if not triggers:
        raise ValueError(f"no ScaledObject with an external trigger in {', '.join(map(str, paths))}")
    return triggers


def train_one(trigger: TriggerSpec, settings: Settings, sources: dict, store: ArtifactStore, origins: int) -> dict:
    step = int(settings.metrics.step)
    horizon = max(1, math.ceil(trigger.horizon / step))
    now = time.time()
    history = align(sources[trigger.source].fetch(trigger.source_params, int(now - settings.metrics.history),
                                                  int(now), step), step)
    params = settings.models.params_for(trigger.model, horizon, trigger.quantile)
    started = time.perf_counter()
    model = create(trigger.model, **params, step=step).fit(history)
    fit_seconds = time.perf_counter() - started
    scores = backtest(history, trigger.model, horizon, origins, params=params).as_dict()
    scores["fit_seconds"] = fit_seconds
    versions = {lib: _version(lib) for lib in LIBRARIES}
    files = bundle(model, workload="/".join(trigger.key), trained_at=now, data=history, scores=scores,
                   versions=versions)
    folder = store.write(trigger.key, files)
    forecast_model = model.describe().get("chosen", model.name)
    return {**scores, "forecast_model": forecast_model, "version": folder.name}


def _version(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "absent"
