"""`helios simulate TRACE...`: replay demand traces through KEDA and the HPA, Helios against reactive scaling."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from helios.adapters.file import read_csv
from helios.engine.errors import HeliosError
from helios.engine.replay.hpa import Behavior
from helios.engine.replay.loop import Cluster

from ..config.durations import parse_duration
from ..config.metadata import InvalidMetadata
from ..config.settings import ConfigError, load_settings
from .simulate.compare import Replay, check_policy, compare, policy_names
from .tables import markdown_table
from .traces import csv_files, native_step

COLUMNS = ("trace", "policy", "underprovisioned_fraction", "unserved_fraction", "replica_hours", "overprovision_mean",
           "scale_events")
# Flags that become the trigger's scalerMetadata, validated by the scaler's own parser.
TRIGGER_FLAGS = {"quantile": "quantile", "lead_time": "leadTime", "horizon": "horizon",
                 "target_shortfall": "targetShortfall", "cost_cap": "costCap"}


def register(commands) -> None:
    p = commands.add_parser("simulate", help="replay demand traces through KEDA + HPA: Helios vs reactive vs oracle",
                            description="Replays `timestamp,value` demand traces through KEDA polling, the HPA "
                                        "(AverageValue target, tolerance, behavior) and pods that start after a "
                                        "delay, once per policy, and reports how often each was under-provisioned "
                                        "and what it cost.")
    p.add_argument("paths", nargs="+", metavar="TRACE", help="timestamp,value CSV files or folders of them")
    p.add_argument("--policies",
                   help="comma-separated: reactive, reactive+N%% (reactive with N %% headroom, e.g. reactive+20%%), "
                        "oracle, or a Helios model name (default: reactive, models.default, oracle)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-value", type=float, metavar="X",
                        help="the trigger's targetValue (default: the window's 99th percentile / --peak-replicas)")
    target.add_argument("--peak-replicas", type=int, default=20, metavar="N",
                        help="scale each trace so its 99th percentile needs N replicas (default 20)")
    p.add_argument("--capacity", type=float, metavar="X", help="demand one ready replica serves (default: targetValue)")
    p.add_argument("--startup-delay", default="2m", help="pod creation to ready (default 2m)")
    p.add_argument("--polling-interval", default="30s", help="KEDA's pollingInterval, also Helios's refresh (30s)")
    p.add_argument("--sync-period", default="15s", help="the HPA's sync period, the simulation's tick (15s)")
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=100)
    p.add_argument("--tolerance", type=float, default=0.1, help="the HPA's tolerance (default 0.1)")
    p.add_argument("--behavior", metavar="FILE", help="YAML of the HPA's spec.behavior (default: Kubernetes')")
    p.add_argument("--quantile", help="trigger quantile: a fixed quantile instead of a shortfall target")
    p.add_argument("--target-shortfall",
                   help="trigger targetShortfall, e.g. 2%% (default: provisioning.target_shortfall)")
    p.add_argument("--cost-cap", help="trigger costCap: at most this many times reactive's replica-hours "
                                      "(default: provisioning.cost_cap)")
    p.add_argument("--lead-time", help="trigger leadTime (default: models.lead_time)")
    p.add_argument("--horizon", help="trigger horizon (default: models.horizon)")
    p.add_argument("--config", metavar="FILE", help="Helios settings YAML (models, metrics) as `serve` reads it")
    p.add_argument("--warmup", default="7d", help="history before the simulated window (default 7d)")
    p.add_argument("--days", type=float, help="simulate only the last N days (default: all after the warm-up)")
    p.add_argument("--step", default="native", help="Helios's metrics.step: a duration, or `native` (each "
                                                    "trace's most common step, default)")
    p.add_argument("--anomaly-alerts", action="store_true",
                   help="also count the anomaly alerts serving would raise (anomaly.detector of --config, one "
                        "per incident; xgboost adds about 45 ms of CPU per new sample)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per trace: demand and each policy's ready capacity")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        policies = _policies(args.policies or f"reactive,{settings.models.default},oracle")
        cluster = _cluster(args)
        replay = Replay(warmup=parse_duration(args.warmup), days=args.days, peak_replicas=args.peak_replicas,
                        trigger={key: getattr(args, flag) for flag, key in TRIGGER_FLAGS.items()
                                 if getattr(args, flag) is not None}, anomaly=args.anomaly_alerts)
        fixed_step = None if args.step == "native" else int(parse_duration(args.step))
        traces = {f.name: read_csv(str(f)) for f in csv_files(args.paths)}
    except (ConfigError, HeliosError, ValueError) as e:
        return _fail(str(e))
    rows = []
    for name, trace in traces.items():
        try:
            result = compare(name, trace, policies, cluster, replay, settings, fixed_step or native_step(trace))
        except InvalidMetadata as e:
            return _fail(_flag_names(str(e)))
        except (HeliosError, ValueError) as e:
            return _fail(f"{name}: {e}")
        rows += result.rows()
        if args.plot:
            from .simulate.plot import plot

            plot(Path(args.plot), result)
    print(json.dumps(rows, indent=1) if args.format == "json" else table(rows))
    return 0


def _policies(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    if not chosen:
        raise ValueError(f"--policies: none given; allowed: {', '.join(policy_names())}")
    problems = []
    for p in chosen:
        try:
            check_policy(p)
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise ValueError("--policies: " + "; ".join(problems))
    return list(dict.fromkeys(chosen))


def _cluster(args: argparse.Namespace) -> Cluster:
    problems = [f"--{flag.replace('_', '-')} must be > 0" for flag in ("target_value", "capacity", "peak_replicas")
                if getattr(args, flag) is not None and getattr(args, flag) <= 0]
    if not 1 <= args.min_replicas <= args.max_replicas:
        problems.append("--min-replicas must be >= 1 and <= --max-replicas")
    if not 0 <= args.tolerance < 1:
        problems.append("--tolerance must be in [0, 1)")
    if problems:
        raise ValueError("; ".join(problems))
    durations = {}
    for flag in ("startup_delay", "polling_interval", "sync_period"):
        seconds = parse_duration(getattr(args, flag))
        least = 0 if flag == "startup_delay" else 1  # pods may start at once; the loops must tick
        if seconds < least:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least {least}s")
        durations[flag] = seconds
    return Cluster(target_value=args.target_value, capacity=args.capacity, min_replicas=args.min_replicas,
                   max_replicas=args.max_replicas, tolerance=args.tolerance, behavior=_behavior(args.behavior),
                   **durations)


def _behavior(path: str | None) -> Behavior:
    if path is None:
        return Behavior()
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        return Behavior.model_validate(doc)
    except OSError as e:
        raise ValueError(f"--behavior {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"--behavior {path}: not valid YAML: {e}") from None
    except ValidationError as e:
        problems = [f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ValueError(f"--behavior {path}: " + "; ".join(problems)) from None


def _flag_names(message: str) -> str:
    """The scaler's metadata errors name trigger keys; here the user typed flags."""
    for flag, key in TRIGGER_FLAGS.items():
        message = message.replace(f"{key}=", f"--{flag.replace('_', '-')}=")
    return message


def table(rows: list[dict]) -> str:
    if not any("anomaly_alerts" in r for r in rows):
        return markdown_table(rows, COLUMNS)
    return markdown_table([{"anomaly_alerts": "-", **r} for r in rows], (*COLUMNS, "anomaly_alerts"))


def _fail(message: str) -> int:
    print(f"helios simulate: {message}", file=sys.stderr)
    return 2
