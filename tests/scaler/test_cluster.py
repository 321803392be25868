"""Replicas that share the work through a real redis-server (runtime/cluster.py): each workload is owned
and fitted by exactly one replica, every replica answers every call the same from the snapshots the
owners publish, a replica that dies hands its workloads on without a cold refit, and a Redis outage
leaves the answers standing."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from helios.scaler.pb import admin_pb2 as admin_pb
from helios.scaler.runtime.cluster import rendezvous

from ..helpers import fast_settings, until
from ..pki import CA
from ..redis_server import RedisServer

TTL = 2


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def replica(redis_url: str, name: str):
    return fast_settings(state={"redis_url": redis_url, "replica_id": name, "heartbeat_ttl": TTL},
                         metrics={"refresh_interval": 0.5})


def trigger(i: int) -> dict:
    return {"source": "demo", "targetValue": str(20 + i)}


def owned(app) -> set:
    return {key for key in (s.trigger.key for s in app.store.all()) if app.workloads.get(key) is not None}


def test_rendezvous_moves_only_the_workloads_it_must():
    keys = [("ns", f"w{i}", "m") for i in range(300)]
    before = {k: rendezvous(["a", "b", "c"], k) for k in keys}
    after = {k: rendezvous(["a", "b"], k) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "c" for k in moved)  # only c's workloads move
    assert 80 <= sum(v == "a" for v in before.values()) <= 120  # a third each, give or take


async def test_each_workload_has_one_owner_and_every_replica_answers_the_same(redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    b = await start_app(replica(redis_server.url, "b"))
    await until(lambda: a.cluster.members == ["a", "b"] == b.cluster.members, what="both members seen")
    ca, cb = client_for(a), client_for(b)
    names = {}
    for i in range(12):  # every call goes to b; a owns about half of them all the same
        names[i] = await cb.metric_name(trigger(i), name=f"w{i}")
        await cb.get_metrics(trigger(i), names[i], name=f"w{i}")
    keys = {("shop", f"w{i}", names[i]) for i in range(12)}
    await until(lambda: owned(a) | owned(b) == keys and not owned(a) & owned(b), what="one owner each")
    assert owned(a) and owned(b)  # split between them
    fits = a.telemetry.fit_seconds, b.telemetry.fit_seconds

    def forecasts(app):
        return {k for k in keys if (s := app.store.get(k)) is not None and s.forecast is not None}

    await until(lambda: forecasts(a) == keys == forecasts(b), what="every forecast on both replicas")
    for i in range(12):  # the same snapshot behind both answers
        va = (await ca.get_metrics(trigger(i), names[i], name=f"w{i}")).metricValueFloat
        vb = (await cb.get_metrics(trigger(i), names[i], name=f"w{i}")).metricValueFloat
        assert va == vb
    for key in owned(a):  # b's copies hold the trigger b parsed, not one unpickled with every copy
        assert b.store.get(key).trigger is b.cluster._asked[key][0]
    listed = await cb.admin.ListWorkloads(admin_pb.ListWorkloadsRequest(), timeout=5)
    owners = {(w.ref.namespace, w.ref.name, w.ref.metric_name): w.owner for w in listed.workloads}
    assert owners == {**dict.fromkeys(owned(a), "a"), **dict.fromkeys(owned(b), "b")}
    fitted = sum(m.labels("baseline", "fit")._sum.get() > 0 for m in fits)
    assert fitted == 2  # both fitted something, and only what they own:
    counts = [sum(s.value for s in m.collect()[0].samples if s.name.endswith("_count")
                  and s.labels.get("operation") == "fit") for m in fits]
    assert sum(counts) == 12


async def test_calls_about_registered_workloads_wait_for_the_next_round_instead_of_starting_one(
        redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    c = client_for(a)
    names = {i: await c.metric_name(trigger(i), name=f"w{i}") for i in range(8)}
    keys = {("shop", f"w{i}", names[i]) for i in range(8)}
    await until(lambda: owned(a) == keys, what="a owns them all")
    rounds = 0
    counted = a.cluster._round

    async def counting():
        nonlocal rounds
        rounds += 1
        await counted()

    a.cluster._round = counting
    started = time.monotonic()
    while time.monotonic() - started < 3 * TTL:  # calls every 50 ms, each workload due again every TTL/3
        for i in range(8):
            await c.get_metrics(trigger(i), names[i], name=f"w{i}")
        await asyncio.sleep(0.05)
    # One round per TTL/3 (a call about a new workload starts one at once): 9 in 3 TTLs, give or take.
    # When every renewal started a round, 3 TTLs of these calls ran about 40.
    assert rounds <= 12
    names[8] = await c.metric_name(trigger(8), name="w8")  # a new one is registered and adopted at once
    await until(lambda: ("shop", "w8", names[8]) in owned(a), timeout=TTL / 3, what="w8 adopted")

async def test_renewals_write_when_each_replica_was_asked_not_the_trigger(redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    c = client_for(a)
    names = {i: await c.metric_name(trigger(i), name=f"w{i}") for i in range(4)}
    r = redis.Redis.from_url(redis_server.url)
    await until(lambda: len(owned(a)) == 4 == r.hlen("helios:workloads"), what="a owns them all")
    registry, version, asked = r.hgetall("helios:workloads"), r.get("helios:registry"), r.hgetall("helios:asked")
    assert len(registry) == 4 and len(asked) == 4
    started = time.monotonic()
    while time.monotonic() - started < 2 * TTL:  # every workload due again every TTL/3
        for i in range(4):
            await c.get_metrics(trigger(i), names[i], name=f"w{i}")
        await asyncio.sleep(0.05)
    # The triggers were written once, not pickled again with every renewal; only the times moved on.
    assert r.hgetall("helios:workloads") == registry and r.get("helios:registry") == version
    later = r.hgetall("helios:asked")
    assert later.keys() == asked.keys() and all(float(later[k]) > float(asked[k]) for k in asked)
    edited = {**trigger(0), "targetValue": "99"}  # an edited trigger is registered again
    await c.get_metrics(edited, names[0], name="w0")
    await until(lambda: r.get("helios:registry") != version, timeout=TTL, what="the edit registered")


async def test_an_owner_keeps_what_another_replica_is_asked_about_and_drops_it_once_nobody_is(
        redis_server, start_app, client_for):
    def idle(name):
        return fast_settings(state={"redis_url": redis_server.url, "replica_id": name, "heartbeat_ttl": TTL},
                             metrics={"refresh_interval": 0.2, "idle_timeout": 1.5, "staleness_limit": 60})

    a, b = await start_app(idle("a")), await start_app(idle("b"))
    await until(lambda: a.cluster.members == ["a", "b"] == b.cluster.members, what="both members seen")
    cb = client_for(b)
    names = {i: await cb.metric_name(trigger(i), name=f"w{i}") for i in range(8)}
    keys = {("shop", f"w{i}", names[i]) for i in range(8)}
    await until(lambda: owned(a) | owned(b) == keys and owned(a), what="a owns some")
    from_a = owned(a)
    started = time.monotonic()
    while time.monotonic() - started < 4:  # only b is asked, for well over idle_timeout
        for i in range(8):
            await cb.get_metrics(trigger(i), names[i], name=f"w{i}")
        await asyncio.sleep(0.1)
    assert owned(a) == from_a  # b's calls kept them
    r = redis.Redis.from_url(redis_server.url)
    await until(lambda: not owned(a) and not owned(b) and not r.hlen("helios:workloads"), timeout=10,
                what="all dropped once nobody asks")


async def test_replicas_register_again_after_redis_loses_its_data(redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    b = await start_app(replica(redis_server.url, "b"))
    await until(lambda: a.cluster.members == ["a", "b"] == b.cluster.members, what="both members seen")
    cb = client_for(b)
    names = {i: await cb.metric_name(trigger(i), name=f"w{i}") for i in range(6)}
    keys = {("shop", f"w{i}", names[i]) for i in range(6)}
    await until(lambda: owned(a) | owned(b) == keys, what="one owner each")
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    started = time.monotonic()
    await until(lambda: r.hlen("helios:workloads") == 6 and r.scard("helios:members") == 2, timeout=2 * TTL,
                what="registered again")
    assert time.monotonic() - started <= TTL
    # each member may briefly see the other gone (its TTL key and the members set went with the data)
    await until(lambda: owned(a) | owned(b) == keys and not owned(a) & owned(b), timeout=TTL, what="one owner each")
    # and what a new owner would need to carry on, the fitted models too, saved again
    await until(lambda: all(r.exists(f"helios:{kind}:{'/'.join(k)}") for k in keys for kind in ("record", "artifact")),
                timeout=2 * TTL, what="records and artifacts saved again")
    for i in range(6):
        assert (await cb.get_metrics(trigger(i), names[i], name=f"w{i}")).metricValueFloat > 0


async def test_a_dead_replica_is_replaced_within_a_ttl_without_a_cold_refit(redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    b = await start_app(replica(redis_server.url, "b"))
    await until(lambda: a.cluster.members == ["a", "b"] == b.cluster.members, what="both members seen")
    cb = client_for(b)
    names = {}
    for i in range(12):
        names[i] = await cb.metric_name(trigger(i), name=f"w{i}")
        await cb.get_metrics(trigger(i), names[i], name=f"w{i}")
    keys = {("shop", f"w{i}", names[i]) for i in range(12)}
    await until(lambda: len(owned(a)) + len(owned(b)) == 12 and all(
        (s := b.store.get(k)) is not None and s.forecast is not None for k in keys), what="forecasts everywhere")
    from_a = owned(a)
    fitted_at = {k: b.store.get(k).fitted_at for k in from_a}
    await a.cluster.close(leave=False)  # as a crash: no goodbye, its key expires after the TTL
    await a.refresher.close()
    started = time.monotonic()
    await until(lambda: owned(b) == keys, timeout=3 * TTL + 5, what="b owns everything")
    assert time.monotonic() - started <= 2 * TTL + 2
    for key in from_a:  # carried on from a's record: the same fit, forecasts all along
        w = b.workloads.get(key)
        assert w.artifact is not None and w.fitted_at == fitted_at[key]
        assert b.store.get(key).forecast is not None
    for i in range(12):
        assert (await cb.get_metrics(trigger(i), names[i], name=f"w{i}")).metricValueFloat > 0


async def test_a_redis_outage_leaves_the_answers_standing_and_heals(redis_server, start_app, client_for):
    a = await start_app(replica(redis_server.url, "a"))
    ca = client_for(a)
    name = await ca.metric_name(trigger(1), name="w1")
    await ca.get_metrics(trigger(1), name, name="w1")
    await until(lambda: (s := a.store.get(("shop", "w1", name))) is not None and s.forecast is not None
                and s.provisioning is not None or bool(s and s.provisioning_note), what="the first plan")
    before = (await ca.get_metrics(trigger(1), name, name="w1")).metricValueFloat
    redis_server.stop()
    await asyncio.sleep(TTL)
    assert (await ca.get_metrics(trigger(1), name, name="w1")).metricValueFloat == before  # served locally
    errors = a.telemetry.redis_errors
    assert sum(s.value for s in errors.collect()[0].samples if s.name.endswith("_total")) > 0
    redis_server.start()
    name2 = await ca.metric_name(trigger(2), name="w2")
    await ca.get_metrics(trigger(2), name2, name="w2")
    await until(lambda: a.workloads.get(("shop", "w2", name2)) is not None, what="a new workload after the outage")


async def test_replicas_share_the_work_over_rediss_and_one_that_cannot_verify_the_server_stays_apart(
        tmp_path, start_app, client_for):
    ca = CA(tmp_path, "redis-ca")
    server = RedisServer(tmp_path, tls=ca.issue("redis", server=True), ca=ca.pem.cert)
    server.start()
    try:
        a = await start_app(replica(server.url, "a"))
        b = await start_app(replica(server.url, "b"))
        await until(lambda: a.cluster.members == ["a", "b"] == b.cluster.members, what="both members seen over TLS")
        cb = client_for(b)
        names = {i: await cb.metric_name(trigger(i), name=f"w{i}") for i in range(6)}
        for i in range(6):
            await cb.get_metrics(trigger(i), names[i], name=f"w{i}")
        keys = {("shop", f"w{i}", names[i]) for i in range(6)}
        await until(lambda: owned(a) | owned(b) == keys and not owned(a) & owned(b), what="one owner each")
        # Without the CA in its URL the server's certificate does not verify: no plaintext fallback, the
        # replica stays on its own and counts the failures.
        stranger = await start_app(replica(server.url.split("?")[0], "c"))
        await asyncio.sleep(TTL)
        assert stranger.cluster.members == ["c"] and a.cluster.members == ["a", "b"]
        errors = stranger.telemetry.redis_errors
        assert sum(s.value for s in errors.collect()[0].samples if s.name.endswith("_total")) > 0
    finally:
        server.stop()
