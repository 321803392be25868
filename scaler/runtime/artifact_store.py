"""Trained-model bundles on any fsspec URL: `<root>/<namespace>/<scaledobject>/<metric>/<version>/<file>`.

The root is a local path (the default) or an object-store URL (`s3://bucket/prefix`, `gs://bucket/prefix`,
through s3fs and gcsfs). Object stores have no atomic rename of a folder, so a version is published by
writing its files first and its manifest last; the manifest lists every other file's SHA-256. A reader
trusts only a version whose manifest is present, parses and matches every file: the newest such version
is the "newest complete version". A writer that crashed midway leaves a version without a manifest (or
with mismatching files), which readers skip, never half-load. Version names sort by time of writing
(UTC, then a random suffix), newest last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import secrets
import time
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from .state import WorkloadKey

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class ArtifactStore:
    def __init__(self, url: str, **storage_options: Any) -> None:
        """`url`: a folder path or an fsspec URL; `storage_options` go to the filesystem (e.g. s3fs's
        `endpoint_url`, `key`, `secret`); without them, the library's own configuration applies
        (environment variables, instance credentials)."""
        self.url = str(url)
        self.fs: fsspec.AbstractFileSystem
        self.fs, self.root = url_to_fs(self.url, **storage_options)
        self.root = self.root.rstrip("/")

    def folder(self, key: WorkloadKey) -> str:
        return posixpath.join(self.root, *key)

    def write(self, key: WorkloadKey, files: Mapping[str, bytes]) -> str:
        """Publish one version: every file, then the manifest. Returns the version's name."""
        if MANIFEST not in files:
            raise ValueError("a version needs a manifest.json, written last")
        version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
        folder = posixpath.join(self.folder(key), version)
        self.fs.makedirs(folder, exist_ok=True)
        for name in sorted(files, key=lambda n: n == MANIFEST):  # the manifest last
            self.fs.pipe_file(posixpath.join(folder, name), files[name])
        return version

    def write_document(self, path: str, doc: Any) -> str:
        """A JSON document beside the versions (e.g. a training run's summary); returns its full path."""
        full = posixpath.join(self.root, path)
        self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        self.fs.pipe_file(full, json.dumps(doc, indent=1, sort_keys=True).encode())
        return full

    def versions(self, key: WorkloadKey) -> list[str]:
        """Every version folder of the workload, complete or not, oldest first."""
        folder = self.folder(key)
        try:
            entries = self.fs.ls(folder, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = (posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == "directory")
        return sorted(n for n in names if not n.startswith("."))

    def read(self, key: WorkloadKey, version: str) -> dict[str, bytes]:
        folder = posixpath.join(self.folder(key), version)
        paths = [e["name"] for e in self.fs.ls(folder, detail=True, refresh=True) if e["type"] == "file"]
        contents = self.fs.cat(paths) if paths else {}
        return {posixpath.basename(p): contents[p] for p in paths}

    def latest_complete(self, key: WorkloadKey, newer_than: str = "") -> tuple[str, dict[str, bytes]] | None:
        """The newest version whose manifest matches its files (newer than `newer_than`, when given), or None.

        Incomplete versions (a writer still at work, or one that crashed) are skipped with a log line."""
        for version in reversed(self.versions(key)):
            if version <= newer_than:
                return None
            try:
                files = self.read(key, version)
            except FileNotFoundError:
                continue  # removed while we looked
            problem = incomplete(files)
            if problem is None:
                return version, files
            log.warning("skipping incomplete model version",
                        extra={"workload": "/".join(key), "version": version, "error": problem})
        return None

    def read_latest(self, key: WorkloadKey) -> tuple[str, dict[str, bytes]] | None:
        """The newest complete version's files, or None when there is none."""
        return self.latest_complete(key)


def incomplete(files: Mapping[str, bytes]) -> str | None:
    """Why a version is not (yet) complete, or None when its manifest lists every file with its SHA-256."""
    if MANIFEST not in files:
        return "no manifest.json yet: the version is being written, or its writer stopped"
    try:
        listed = json.loads(files[MANIFEST])["files"]
    except (ValueError, KeyError, TypeError) as e:
        return f"manifest.json is unreadable: {e}"
    for name, digest in listed.items():
        if name not in files:
            return f"{name} is missing"
        if hashlib.sha256(files[name]).hexdigest() != digest:
            return f"{name} does not match its SHA-256 in the manifest (truncated or altered)"
    return None
