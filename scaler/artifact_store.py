"""Trained-model bundles on disk: `<root>/<namespace>/<scaledobject>/<metric>/<version>/<file>`.

A version is written into a hidden temporary folder and renamed into place only when complete, so a
crash never leaves a half-written version that `serve` would load. Versions sort by name, newest
last (UTC time of writing, then a random suffix).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from .state import WorkloadKey


class ArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, key: WorkloadKey) -> Path:
        return self.root.joinpath(*key)

    def write(self, key: WorkloadKey, files: Mapping[str, bytes]) -> Path:
        """Write one complete version atomically; returns its folder."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        staging = folder / f".tmp-{version}"
        staging.mkdir()
        for name, content in files.items():
            with open(staging / name, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        os.rename(staging, folder / version)  # atomic on one filesystem
        return folder / version

    def versions(self, key: WorkloadKey) -> list[str]:
        folder = self.folder(key)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def read_latest(self, key: WorkloadKey) -> tuple[str, dict[str, bytes]] | None:
        """The newest version's files, or None when there is none."""
        versions = self.versions(key)
        if not versions:
            return None
        folder = self.folder(key) / versions[-1]
        return versions[-1], {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

