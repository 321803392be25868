"""Helios's own cost of one GetMetrics: the servicer's handler called in process, without gRPC, on a
demo workload whose forecast is ready, so what is timed is the metadata cache, the refresher's note of
the call, the answer cache and the call's telemetry. The transport's share is benchmarks/getmetrics_latency.py's.

    .venv/bin/python benchmarks/handler_cost.py --calls 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from helios.scaler.app import HeliosApp
from helios.scaler.config.settings import load_settings
from helios.scaler.pb import externalscaler_pb2 as pb


class _Context:
    async def abort(self, code, message):
        raise RuntimeError(f"{code}: {message}")


async def measure(calls: int, repeat: int) -> list[float]:
    settings = load_settings(server={"grpc_port": 0, "metrics_port": 0}, security={"health_port": 0},
                             log_level="WARNING", anomaly={"detector": "zscore"})
    app = HeliosApp(settings)
    await app.start()
    try:
        ref = pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata={"source": "demo", "targetValue": "50"})
        servicer, context = app.external_scaler, _Context()
        spec = await servicer.GetMetricSpec(ref, context)
        request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName)
        await servicer.GetMetrics(request, context)
        await asyncio.sleep(3)  # the first forecast and its insights
        results = []
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(calls):
                await servicer.GetMetrics(request, context)
            results.append((time.perf_counter() - started) / calls * 1e6)
        return results
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = asyncio.run(measure(args.calls, args.repeat))
    print("| runs | µs per GetMetrics (median) | each run |\n|---|---|---|")
    print(f"| {len(runs)} | {statistics.median(runs):.1f} | {', '.join(f'{r:.1f}' for r in runs)} |")


if __name__ == "__main__":
    main()
