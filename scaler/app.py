"""Composition root: builds every part from the settings and runs them on one event loop.

gRPC (ExternalScaler, Admin, Health, reflection) on one port; Prometheus /metrics on another.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, start_http_server

from helios.engine.models import MODELS

from .config.metadata import MetadataParser
from .config.settings import Settings
from .config.sources import build_sources
from .pb import admin_pb2, admin_pb2_grpc, externalscaler_pb2, externalscaler_pb2_grpc
from .runtime.artifact_store import ArtifactStore
from .runtime.cluster import Cluster, ReplicatedStore
from .runtime.context import ContextFeed
from .runtime.inquiries import Inquiries
from .runtime.insights import Insights
from .runtime.refresher import Refresher
from .runtime.runner import ModelRunner
from .runtime.store import MemoryStore
from .runtime.telemetry import Telemetry
from .runtime.workloads import Workloads
from .serve.admin import Admin
from .serve.auth import admin_interceptors
from .serve.exporter import SnapshotCollector
from .serve.external_scaler import ExternalScaler
from .serve.tls import add_main_port, health_only_server

log = logging.getLogger(__name__)

SERVICES = (
    externalscaler_pb2.DESCRIPTOR.services_by_name["ExternalScaler"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)


YOUNG_OBJECTS = 10_000  # the cycle collector's first threshold (Python's default: 700)


class HeliosApp:
    def __init__(self, settings: Settings, sources: Mapping[str, object] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.sources = dict(sources) if sources is not None else build_sources(settings)
        self.registry = CollectorRegistry()
        # The process's CPU, memory and collections (python_gc_collections_total), as any Python exporter has.
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.telemetry = Telemetry(self.registry)
        state = settings.state
        self.store = MemoryStore() if state.redis_url is None else ReplicatedStore()
        self.cluster = None if state.redis_url is None else Cluster(
            state.redis_url.get_secret_value(), state.prefix,
            state.replica_id or f"{socket.gethostname()}-{os.getpid()}", state.heartbeat_ttl, self.store,
            self.telemetry, settings.metrics.idle_timeout, clock)
        self.workloads = Workloads(self.store, settings.metrics.staleness_limit)
        self.runner = ModelRunner(settings.models.workers, self.telemetry)
        artifacts = ArtifactStore(settings.models.artifacts) if settings.models.artifacts else None
        # xgboost's detector fits take seconds: they get processes of their own so forecasts never queue
        # behind them. The cheap detectors share the model workers.
        self.detection_runner = ModelRunner(settings.anomaly.workers, self.telemetry) \
            if settings.anomaly.detector == "xgboost" else self.runner
        self.insights = Insights(self.detection_runner, self.workloads, settings, self.telemetry, clock)
        # Provisioning replays (about 0.8 s of CPU per workload per refit: benchmarks/provisioning_cost.py) get
        # a process of their own too: a forecast update queued behind one would reach KEDA that much later.
        self.replay_runner = ModelRunner(settings.provisioning.workers, self.telemetry)
        self.context = ContextFeed(self.workloads, self.sources, settings, self.telemetry, clock,
                                   self.insights.reconsider)
        self.refresher = Refresher(self.workloads, self.sources, self.runner, settings, self.telemetry, clock,
                                   artifacts, self.insights, self.replay_runner, self.context, self.cluster)
        self.registry.register(SnapshotCollector(self.store, settings, clock))
        parse = MetadataParser(self.sources, settings.models, MODELS, settings.provisioning,
                               settings.scaling.pod_startup_seconds, settings.security.namespace_sources)
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(interceptors=admin_interceptors(settings.security, self.registry))
        self.external_scaler = ExternalScaler(parse, self.refresher, self.workloads, settings, self.telemetry, clock)
        externalscaler_pb2_grpc.add_ExternalScalerServicer_to_server(
            self.external_scaler, self.server)
        admin_pb2_grpc.add_AdminServicer_to_server(
            Admin(Inquiries(self.workloads, self.runner, self.insights, settings, clock, self.cluster), settings,
                  self.telemetry, clock), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.health_server = health_only_server(self.health)  # plaintext, for kubelet probes
        self.health_port = 0
        self.grpc_port = 0
        self.metrics_port = 0
        self._http = None

    async def start(self) -> None:
        cfg = self.settings.server
        self.grpc_port = add_main_port(self.server, f"{cfg.host}:{cfg.grpc_port}", self.settings.security)
        self.health_port = self.health_server.add_insecure_port(f"{cfg.host}:{self.settings.security.health_port}")
        self._http, _ = start_http_server(cfg.metrics_port, addr=cfg.metrics_host, registry=self.registry)
        self.metrics_port = self._http.server_port
        # The replay process is not warmed up: it starts with the first replay, which nothing waits for.
        await asyncio.gather(*(r.warm_up() for r in self._runners() if r is not self.replay_runner))
        if self.cluster is not None:  # who owns what is known before the first call is answered
            r = self.refresher
            await self.cluster.start(r.adopt, r.release, self.workloads.get)
        await self.server.start()
        await self.health_server.start()
        for service in ("", *SERVICES):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        # What is alive now (modules, classes, settings: about 150,000 objects) lives as long as the server:
        # out of the cycle collector's reach, each full collection has that much less to walk (80 ms of
        # about 200 ms with 1,000 workloads, a pause every GetMetrics call in flight waits out).
        gc.freeze()
        # Young collections every YOUNG_OBJECTS allocations instead of 700: a full collection comes after
        # every 100 young ones, and with 3,000 workloads on three replicas (each holding every snapshot) a
        # replica ran one every ~10 s, 300-600 ms each, finding nothing to collect (its data has no
        # cycles): GetMetrics' p99 was those pauses. A young collection of 10,000 objects takes a few ms.
        gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
        gc.callbacks.append(self.telemetry.gc_callback)  # helios_gc_pause_seconds
        security = self.settings.security
        log.info("helios serving", extra={"grpc_port": self.grpc_port, "metrics_port": self.metrics_port,
                                          "health_port": self.health_port, "tls": security.tls,
                                          "mtls": security.mtls, "admin_auth": security.admin_auth})

    def _runners(self) -> list[ModelRunner]:
        return list({id(r): r for r in (self.runner, self.detection_runner, self.replay_runner)}.values())

    async def stop(self) -> None:
        """Graceful: report NOT_SERVING, let in-flight calls finish within the grace period, then stop."""
        grace = self.settings.server.shutdown_grace
        await _bounded(self.health.enter_graceful_shutdown(), 5, "health NOT_SERVING")
        await _bounded(self.server.stop(grace), grace + 5, "gRPC server stop")
        await _bounded(self.health_server.stop(None), 5, "health server stop")
        if self.cluster is not None:
            await _bounded(self.cluster.close(), 5, "cluster membership")
        await _bounded(self.refresher.close(), 10, "refresh loops, replays, insight runs and context fetches")
        self.context.close()
        for runner in self._runners():
            runner.close()
        if self._http is not None:
            self._http.shutdown()
        if self.telemetry.gc_callback in gc.callbacks:
            gc.callbacks.remove(self.telemetry.gc_callback)
        log.info("helios stopped")

    async def run_until_signalled(self) -> None:
        # Handlers first: a SIGTERM that lands while the workers start must still stop them cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("shutting down")
        await self.stop()


async def _bounded(step, seconds: float, what: str) -> None:
    """Await one shutdown step for at most `seconds`: a step that hangs (a stuck RPC, a library bug) must
    not keep the process from exiting after SIGTERM; the remaining steps still run."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown step did not finish in time; going on", extra={"step": what, "seconds": seconds})


async def serve(settings: Settings) -> None:
    """Run Helios until SIGTERM or SIGINT. The app is built inside the loop that runs it (grpc.aio)."""
    await HeliosApp(settings).run_until_signalled()
