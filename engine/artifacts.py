"""A trained model as a bundle of named files, and the checks that make a bundle safe to load.

Files: `model.json` (Forecaster.to_bytes), `metrics.json` (backtest scores), `data.json` (a summary of
the training data) and `manifest.json` (format, workload, model, parameters, library versions, when,
and the SHA-256 of every other file). Pure: bytes in, bytes out; storing them is the caller's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ArtifactError
from .models import MODELS, load
from .models.base import Forecaster
from .types import Series

FORMAT = 1
MANIFEST = "manifest.json"


def bundle(
    model: Forecaster, *, workload: str, trained_at: float, data: Series, scores: Mapping[str, Any],
    versions: Mapping[str, str],
) -> dict[str, bytes]:
    files = {
        "model.json": model.to_bytes(),
        "metrics.json": _json(dict(scores)),
        "data.json": _json(summarize(data)),
    }
    manifest = {
        "format": FORMAT,
        "workload": workload,
        "model": model.name,
        "params": model.params,
        "details": model.describe(),
        "trained_at": trained_at,
        "versions": dict(versions),
        "files": {name: _sha256(content) for name, content in files.items()},
    }
    return {**files, MANIFEST: _json(manifest)}


def open_bundle(files: Mapping[str, bytes]) -> tuple[Forecaster, dict[str, Any]]:
    """The model and manifest of a bundle; ArtifactError naming what is wrong otherwise."""
    if MANIFEST not in files:
        raise ArtifactError("no manifest.json: the bundle is incomplete")
    try:
        manifest = json.loads(files[MANIFEST])
    except ValueError as e:
        raise ArtifactError(f"manifest.json is not JSON: {e}") from None
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"format {manifest.get('format')!r}, this Helios reads format {FORMAT}")
    for name, digest in manifest.get("files", {}).items():
        if name not in files:
            raise ArtifactError(f"{name} is missing")
        if _sha256(files[name]) != digest:
            raise ArtifactError(f"{name} does not match its SHA-256 in the manifest (truncated or altered)")
    if manifest.get("model") not in MODELS:
        raise ArtifactError(f"model {manifest.get('model')!r} is unknown to this Helios")
    try:
        return load(files["model.json"]), manifest
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"model.json cannot be loaded: {e}") from None


def summarize(data: Series) -> dict[str, Any]:
    """What the model was trained on: span, size, gaps and the distribution of values."""
    values = data.values[~np.isnan(data.values)]
    summary: dict[str, Any] = {"samples": len(data), "missing": int(np.isnan(data.values).sum())}
    if len(data):
        summary |= {"start": int(data.timestamps[0]), "end": int(data.timestamps[-1])}
    if values.size:
        p50, p95 = np.quantile(values, [0.5, 0.95])
        summary |= {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
                    "p50": float(p50), "p95": float(p95)}
    return summary


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
