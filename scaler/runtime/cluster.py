"""Several replicas sharing the work through Redis (or Valkey): who is alive, who owns which workload,
and the snapshots every replica answers from.

- **Membership**: each replica sets `<prefix>:member:<id>` with a TTL (`state.heartbeat_ttl`), renews it
  three times per TTL and lists its name in `<prefix>:members`; the members are the names whose keys are alive.
- **Ownership**: rendezvous hashing over the members: a workload belongs to the member with the
  highest hash of (member, workload), so a membership change moves only the workloads it must.
- **Registry**: any replica asked about a workload records its trigger in `<prefix>:workloads` once (again
  only if the trigger changed, or the registry lost it), counts the change in `<prefix>:registry` and says
  so on `<prefix>:events`; the owner adopts it at once. When each replica was last asked goes to
  `<prefix>:asked`, at most once per TTL/3 per workload: the owner reads it before it drops a workload
  its own calls have not asked about for `idle_timeout`. (Renewing the trigger with the time, every
  replica pickled its 3,000 triggers every round and unpickled the others': 70 ms of the event loop at a
  time, GetMetrics' p99.)
- **Snapshots**: the owner publishes each new snapshot to `<prefix>:snap:<key>` and announces it; the
  others copy it into their local store, so GetMetrics stays an in-memory read on every replica and
  all of them answer from the same snapshot. With the snapshot the owner saves what a new owner needs
  to carry on without a cold refit (`<prefix>:record:<key>`: the fitted model and detector, the
  likelihood and alert state, the ledger, the last action).
- **Failures**: a replica that dies stops renewing its key; within one TTL the others see it gone and
  adopt its workloads from the last record. When Redis is down every replica keeps answering from its
  local copies (until the staleness limit makes them UNAVAILABLE), owners keep refreshing what they
  own, errors are counted in helios_redis_errors_total, and everything resumes when Redis is back.

Snapshots and records are pickled: Redis must be Helios's own (a password, a private network), as
anyone who can write to it can make every replica run code.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import replace

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config.metadata import TriggerSpec
from .state import Snapshot, WorkloadKey
from .store import MemoryStore
from .telemetry import Telemetry
from .workloads import Workload

log = logging.getLogger(__name__)

# What a new owner needs from the last one to carry on: the Workload fields that are not rebuilt cheaply.
RECORD_FIELDS = ("fitted_with", "fitted_at", "version", "detector_fitted_at", "detector_context", "likelihood",
                 "scored_at", "alerts", "ledger", "last_action", "replayed_for")
ARTIFACT_FIELDS = ("artifact", "detector")  # large: saved only when they change
ROUND_SLICE = 200  # registry entries a round reads between two turns of the event loop
_UNKNOWN = object()


def rendezvous(members: list[str], key: WorkloadKey) -> str | None:
    """The member with the highest hash of (member, workload); None without members."""
    name = "/".join(key)
    return max(members, key=lambda m: hashlib.sha256(f"{m}\0{name}".encode()).digest(), default=None)


class ReplicatedStore(MemoryStore):
    """The local copies every replica answers from. A snapshot this replica owns is also handed to the
    cluster to publish; copies of the others' arrive through `put_copy`."""

    def __init__(self) -> None:
        super().__init__()
        self.on_put: Callable[[Snapshot], None] | None = None

    def put(self, snap: Snapshot) -> None:
        super().put(snap)
        if self.on_put is not None:
            self.on_put(snap)

    def put_copy(self, snap: Snapshot) -> None:
        super().put(snap)


class Cluster:
    def __init__(self, url: str, prefix: str, replica_id: str, ttl: float, store: ReplicatedStore,
                 telemetry: Telemetry, idle_timeout: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.replica_id = replica_id
        self.members: list[str] = [replica_id]  # until the first heartbeat: alone
        self._redis = aioredis.from_url(url, socket_timeout=max(1.0, ttl / 3), socket_connect_timeout=2.0)
        self._p = prefix
        self._ttl = ttl
        self._idle_timeout = idle_timeout
        self._store = store
        self._telemetry = telemetry
        self._clock = clock
        self._asked: dict[WorkloadKey, tuple[TriggerSpec, float]] = {}  # to register: trigger, when asked
        self._registered: dict[WorkloadKey, TriggerSpec] = {}  # the trigger this replica registered for each
        self._reported: dict[WorkloadKey, float] = {}  # the time asked it last wrote for each
        self._dirty: set[WorkloadKey] = set()  # owned snapshots to publish
        self._saved_artifacts: dict[WorkloadKey, tuple[int, int]] = {}
        self._unlisted: dict[WorkloadKey, int] = {}  # copies not in the registry: rounds since
        self._owners: dict[WorkloadKey, str | None] = {}  # rendezvous over self.members, remembered
        self._registry: dict[bytes, TriggerSpec] = {}  # the registry as last read, by pickled trigger
        self._registry_version: bytes | None | object = _UNKNOWN  # <prefix>:registry when it was read
        self._wake = asyncio.Event()
        self._publish = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        store.on_put = self._put

    # --- what the refresher asks ------------------------------------------------------------------

    def owner(self, key: WorkloadKey) -> str | None:
        # Remembered until the members change: every call asks (three hashes a call), every round asks
        # for every workload.
        if (owner := self._owners.get(key, _UNKNOWN)) is _UNKNOWN:
            owner = self._owners[key] = rendezvous(self.members, key)
        return owner

    def owns(self, key: WorkloadKey) -> bool:
        return self.owner(key) == self.replica_id

    def asked(self, trigger: TriggerSpec) -> None:
        """A call for `trigger` reached this replica: register it at once when this replica has not (or
        not this version of it), so its owner adopts it; the time asked waits for the next round. (Waking a
        round for every call ran rounds back to back at 3,000 ScaledObjects: p99 426 ms.)"""
        key = trigger.key
        self._asked[key] = (trigger, self._clock())
        if (registered := self._registered.get(key)) is not trigger and registered != trigger:
            self._wake.set()

    async def last_asked(self, key: WorkloadKey) -> float | None:
        """When any replica last said it was asked about `key` (-inf: none did); None when Redis cannot say."""
        try:
            asked = await self._redis.hget(f"{self._p}:asked", _name(key))
        except RedisError as e:
            self._error("asked", e)
            return None
        return float(asked) if asked is not None else -math.inf

    def forget(self, key: WorkloadKey) -> None:
        """The owner dropped the workload (nobody asked for idle_timeout): out of the registry too."""
        self._asked.pop(key, None)
        if self._closed:
            return
        name = _name(key)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(f"{self._p}:workloads", name).hdel(f"{self._p}:asked", name).incr(f"{self._p}:registry")
        self._tasks.append(asyncio.get_running_loop().create_task(self._safe(pipe.execute())))

    def _put(self, snap: Snapshot) -> None:
        if self.owns(snap.trigger.key):
            self._dirty.add(snap.trigger.key)
            self._publish.set()

    # --- the loops --------------------------------------------------------------------------------

    async def start(self, adopt: Callable[[TriggerSpec, dict, float], None], release: Callable[[WorkloadKey], None],
                    record_of: Callable[[WorkloadKey], Workload | None]) -> None:
        """Run the heartbeat/registry loop, the publisher and the listener. `adopt(trigger, record, asked)`
        starts owning a workload with the last owner's record; `release(key)` stops refreshing one
        another replica owns now; `record_of` gives a workload's record."""
        self._adopt, self._release, self._record_of = adopt, release, record_of
        try:  # one round first: who owns what is known before the first call is answered
            await self._round()
        except RedisError as e:
            self._error("join", e)
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self._coordinate(), name="cluster"),
                        loop.create_task(self._publisher(), name="cluster publish"),
                        loop.create_task(self._listen(), name="cluster listen")]

    async def close(self, leave: bool = True) -> None:
        """Stop (once); `leave`: remove this replica's member key so the others take over at once. Each
        step is bounded: a Redis that does not answer must not hold up a shutdown."""
        if self._closed:
            return
        self._closed = True
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if leave:
            await self._safe(asyncio.wait_for(self._redis.delete(f"{self._p}:member:{self.replica_id}"), 2))
        try:
            await asyncio.wait_for(self._redis.aclose(), 2)
        except (TimeoutError, RedisError):
            pass

    # Every loop ends once closed, even if the client turned a cancellation into a connection error.
    async def _coordinate(self) -> None:
        while not self._closed:
            try:
                await self._round()
            except RedisError as e:
                if self._closed:
                    return
                self._error("coordinate", e)
            try:
                await asyncio.wait_for(self._wake.wait(), self._ttl / 3)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _round(self) -> None:
        """Heartbeat, membership, registrations, then adopt what this replica owns and release the rest."""
        r, now = self._redis, self._clock()
        members = await self._heartbeat(now)
        if members != self.members:
            log.info("cluster members changed", extra={"members": members, "replica": self.replica_id})
            self.members = members
            self._owners.clear()
            await r.publish(f"{self._p}:events", b"members")  # the others look again now, not a round later
        self._telemetry.cluster_members.set(len(members))
        await self._register(now)
        registry = await self._read_registry()
        owned = 0
        listed: set[WorkloadKey] = set()
        orphans: list[TriggerSpec] = []  # owned here, not refreshed here yet
        for i, trigger in enumerate(registry.values()):
            if i % ROUND_SLICE == ROUND_SLICE - 1:
                await asyncio.sleep(0)  # thousands of workloads: the calls waiting are served in between
            key = trigger.key
            listed.add(key)
            if not self.owns(key):
                if self._record_of(key) is not None:
                    self._telemetry.ownership_moves.inc()
                    self._release(key)
                continue
            owned += 1
            if self._record_of(key) is None:
                orphans.append(trigger)
        for key in [k for k in self._registered if k not in listed]:  # Redis lost it, or its owner dropped it:
            del self._registered[key]  # registered again next round if asked here within idle_timeout
            self._reported.pop(key, None)
        for i in range(0, len(orphans), ROUND_SLICE):
            await self._adopt_all(orphans[i:i + ROUND_SLICE])
        self._telemetry.owned_workloads.set(owned)
        # Copies of workloads their owner dropped (idle) go here too, once unlisted for a whole TTL: after
        # Redis lost its data the replicas register again within a third of one.
        for snap in self._store.all():
            key = snap.trigger.key
            recently = key in self._asked and now - self._asked[key][1] < 3 * self._ttl
            if key in listed or recently or self._record_of(key) is not None:
                self._unlisted.pop(key, None)
            elif (rounds := self._unlisted.get(key, 0) + 1) > 3:
                self._store.remove(key)
                self._unlisted.pop(key, None)
            else:
                self._unlisted[key] = rounds

    async def _heartbeat(self, now: float) -> list[str]:
        """Renew this replica's member key and list the members whose keys are alive. The names are kept in
        `<prefix>:members`, so that no round scans the keyspace (thousands of snapshot keys: a SCAN of
        ~900 round trips a round)."""
        r, names = self._redis, f"{self._p}:members"
        pipe = r.pipeline(transaction=False)
        pipe.set(f"{self._p}:member:{self.replica_id}", now, ex=max(1, round(self._ttl)))
        pipe.sadd(names, self.replica_id).smembers(names)
        listed = sorted(m.decode() for m in (await pipe.execute())[-1])
        alive = await r.mget([f"{self._p}:member:{m}" for m in listed])
        if gone := [m for m, key in zip(listed, alive, strict=True) if key is None]:
            await r.srem(names, *gone)
        return sorted({m for m, key in zip(listed, alive, strict=True) if key is not None} | {self.replica_id})

    async def _register(self, now: float) -> None:
        """Write the triggers this replica was asked about that the registry lacks (or has another version
        of), and the times asked since the last it wrote (at most once per TTL/3 per workload). A workload
        nobody asked this replica about for idle_timeout is left to its owner's idle check."""
        triggers: dict[WorkloadKey, TriggerSpec] = {}
        times: dict[WorkloadKey, float] = {}
        for key, (trigger, asked) in list(self._asked.items()):
            if now - asked > self._idle_timeout:
                del self._asked[key]
                continue
            if (registered := self._registered.get(key)) is not trigger and registered != trigger:
                triggers[key] = trigger
            if asked - self._reported.get(key, -math.inf) >= self._ttl / 3:
                times[key] = asked
        if not triggers and not times:
            return
        pipe = self._redis.pipeline(transaction=True)
        if triggers:
            pipe.hset(f"{self._p}:workloads", mapping={_name(k): pickle.dumps(t) for k, t in triggers.items()})
            pipe.incr(f"{self._p}:registry").publish(f"{self._p}:events", b"workloads")
        if times:
            pipe.hset(f"{self._p}:asked", mapping={_name(k): repr(t) for k, t in times.items()})
        await pipe.execute()
        self._registered.update(triggers)
        self._reported.update(times)

    async def _read_registry(self) -> dict[bytes, TriggerSpec]:
        """The registry's triggers, read again only when `<prefix>:registry` counted a change (or Redis lost
        it), and unpickled only when new."""
        r = self._redis
        version = await r.get(f"{self._p}:registry")
        if version is not None and version == self._registry_version:
            return self._registry
        if version is None and self._registry_version not in (None, _UNKNOWN):  # Redis lost its data:
            self._saved_artifacts.clear()  # each owner's artifacts go again with its next snapshot
        registry: dict[bytes, TriggerSpec] = {}
        for i, raw in enumerate((await r.hgetall(f"{self._p}:workloads")).values()):
            if i % ROUND_SLICE == ROUND_SLICE - 1:
                await asyncio.sleep(0)
            registry[raw] = self._registry.get(raw) or pickle.loads(raw)
        self._registry, self._registry_version = registry, version
        return registry

    async def _adopt_all(self, orphans: list[TriggerSpec]) -> None:
        """Start owning `orphans`, each from the last owner's record, artifacts and snapshot, all read in one
        round trip. (Three reads after one another per workload, with the adopted workloads' first refreshes
        running in between, took 25-38 s to adopt a dead replica's 1,000 workloads at 3,000.)"""
        pipe = self._redis.pipeline(transaction=False)
        for trigger in orphans:
            name = _name(trigger.key)
            for kind in ("record", "artifact", "snap"):
                pipe.get(f"{self._p}:{kind}:{name}")
            pipe.hget(f"{self._p}:asked", name)
        found = await pipe.execute()
        for trigger, record, artifacts, snapshot, asked in zip(orphans, *(found[i::4] for i in range(4)), strict=True):
            key = trigger.key
            if self._record_of(key) is not None:
                continue
            state = {**(pickle.loads(record) if record else {}), **(pickle.loads(artifacts) if artifacts else {})}
            if snapshot is not None and self._store.get(key) is None:
                self._store.put_copy(self._local_trigger(pickle.loads(snapshot)))
            self._telemetry.ownership_moves.inc()
            self._adopt(trigger, state, float(asked) if asked is not None else self._clock())

    async def _publisher(self) -> None:
        while not self._closed:
            await self._publish.wait()
            self._publish.clear()
            keys, self._dirty = self._dirty, set()
            try:
                await self._write(keys)
            except RedisError as e:
                if self._closed:
                    return
                self._error("publish", e)
                self._dirty |= keys  # again at the next put
            await asyncio.sleep(0.05)  # puts of one refresh come in a burst: publish them together

    async def _write(self, keys: set[WorkloadKey]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            snap, w = self._store.get(key), self._record_of(key)
            if snap is None or w is None:
                continue
            name = _name(key)
            pipe.set(f"{self._p}:snap:{name}", pickle.dumps(snap))
            pipe.set(f"{self._p}:record:{name}", pickle.dumps({f: getattr(w, f) for f in RECORD_FIELDS}))
            artifacts = (id(w.artifact), id(w.detector))
            if self._saved_artifacts.get(key) != artifacts:
                pipe.set(f"{self._p}:artifact:{name}", pickle.dumps({f: getattr(w, f) for f in ARTIFACT_FIELDS}))
                self._saved_artifacts[key] = artifacts
            pipe.publish(f"{self._p}:events", b"snap " + name.encode())
        await pipe.execute()

    async def _listen(self) -> None:
        while not self._closed:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(f"{self._p}:events")
                while not self._closed:  # polled with a timeout, not listen(): a dropped connection surfaces at once
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    data = message["data"]
                    if data in (b"workloads", b"members"):
                        self._wake.set()
                    elif data.startswith(b"snap "):
                        await self._copy(data[5:].decode())
            except (RedisError, OSError) as e:  # (cancelled at close: the client's own close ends the connection)
                if self._closed:
                    return
                self._error("listen", e)
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1)
                except (TimeoutError, RedisError, OSError):
                    pass
                await asyncio.sleep(self._ttl / 3)

    async def _copy(self, name: str) -> None:
        raw = await self._redis.get(f"{self._p}:snap:{name}")
        if raw is None:
            return
        snap: Snapshot = pickle.loads(raw)
        if not self.owns(snap.trigger.key):  # the owner's own copy is the original
            self._store.put_copy(self._local_trigger(snap))

    def _local_trigger(self, snap: Snapshot) -> Snapshot:
        """`snap` with the trigger object this replica was asked with, when equal: a trigger unpickled with
        every copy is two thirds of a snapshot's tracked objects, and each copy's lived until the next one,
        so the collector's full collections (about 470 ms for 3,000 workloads' copies) came twice as often."""
        asked = self._asked.get(snap.trigger.key)
        if asked is not None and asked[0] is not snap.trigger and asked[0] == snap.trigger:
            return replace(snap, trigger=asked[0])
        return snap

    async def _safe(self, call) -> None:
        try:
            await call
        except (RedisError, TimeoutError) as e:
            self._error("write", e)

    def _error(self, where: str, error: Exception) -> None:
        self._telemetry.redis_errors.labels(where).inc()
        log.warning("redis unavailable", extra={"where": where, "error": str(error)})


def _name(key: WorkloadKey) -> str:
    return "/".join(key)
