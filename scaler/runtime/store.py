"""Where the workloads' snapshots are kept: a small interface, and the in-process store behind it.

The interface is the seam for state shared between replicas: a store that keeps snapshots elsewhere
implements these four methods; nothing else in Helios reads or writes snapshots directly. Workloads
remembers answers per snapshot object, so a store should hand back the object it was given until a
newer one is put (a remote store: a local copy per version).
"""

from __future__ import annotations

from typing import Protocol

from .state import Snapshot, WorkloadKey


class SnapshotStore(Protocol):
    def get(self, key: WorkloadKey) -> Snapshot | None: ...

    def put(self, snap: Snapshot) -> None: ...

    def remove(self, key: WorkloadKey) -> None: ...

    def all(self) -> list[Snapshot]: ...


class MemoryStore:
    """Snapshots in a dict. Written only from the event loop; read from anywhere."""

    def __init__(self) -> None:
        self._snapshots: dict[WorkloadKey, Snapshot] = {}

    def get(self, key: WorkloadKey) -> Snapshot | None:
        return self._snapshots.get(key)

    def put(self, snap: Snapshot) -> None:
        self._snapshots[snap.trigger.key] = snap

    def remove(self, key: WorkloadKey) -> None:
        self._snapshots.pop(key, None)

    def all(self) -> list[Snapshot]:
        # list(dict.values()) runs without releasing the GIL, so the /metrics thread gets a
        # consistent list even while the event loop adds or removes workloads.
        return list(self._snapshots.values())
