"""A trigger's `scalerMetadata` (all strings) parsed into one typed, validated TriggerSpec.

Every bad key is reported at once, each with its value and what is allowed, so one failed
GetMetricSpec tells the user everything to fix in the ScaledObject.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.alias_generators import to_camel

from helios.adapters.allow import Refused
from helios.engine.recommend import ScalingPolicy
from helios.engine.replay.hpa import Behavior, ScaleDownRules, ScaleUpRules
from helios.engine.replay.loop import Cluster
from helios.engine.replay.provision import SLO

from .durations import format_duration, parse_duration
from .settings import CostCap, ModelsSettings, ProvisioningSettings, Share, Window

# Keys KEDA itself reads from the trigger metadata and passes along; Helios ignores them.
KEDA_KEYS = frozenset({"scalerAddress", "enableTLS", "unsafeSsl"})
METRIC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class InvalidMetadata(ValueError):
    """scalerMetadata that cannot be served; `problems` holds one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid scalerMetadata: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ContextSpec:
    """What a trigger names as its workload's context: the pods of `workload` in `namespace`, and the
    database and cache instances it uses (None: not named, not read)."""

    namespace: str
    workload: str
    database: str | None = None
    cache: str | None = None


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of one ScaledObject, as Helios serves it."""

    namespace: str
    name: str
    metric_name: str
    source: str
    source_params: Any  # the source's Params dataclass
    target_value: float
    activation_value: float
    horizon: float  # seconds
    lead_time: float  # seconds
    model: str
    quantile: float
    mode: Literal["act", "observe"]
    signal: Literal["load", "cpu", "memory"] = "load"  # what the value measures: names the predicted_* gauge
    # How much to provision: chosen at each refit to meet `slo` (engine.replay.provision), replaying the
    # workload through `cluster` (the HPA facts); None when the trigger fixes its `quantile`.
    slo: SLO | None = None
    cluster: Cluster = Cluster()
    context: ContextSpec | None = None  # whose pods (and database, cache) to read as context; None: off

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.name, self.metric_name)


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=7 * 86400)]
# Kubernetes object names: a DNS-1123 label for a namespace, a subdomain for a Deployment.
Namespace = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
ObjectName = Annotated[str, Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
Instance = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.:/]*$")]


class _CommonKeys(BaseModel):
    """The keys every trigger may set, whatever its source."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)

    source: str
    target_value: float = Field(gt=0, allow_inf_nan=False)
    activation_value: float = Field(0.0, ge=0, allow_inf_nan=False)
    horizon: Seconds | None = None
    lead_time: Seconds | None = None
    model: str | None = None
    quantile: float | None = Field(None, ge=0.5, le=0.99)
    mode: Literal["act", "observe"] = "act"
    metric_name: str | None = Field(None, pattern=METRIC_NAME.pattern)
    signal: Literal["load", "cpu", "memory"] = "load"
    target_shortfall: Share | None = None
    cost_cap: CostCap | None = None
    pod_startup: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=3600)] | None = None
    hpa_tolerance: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)
    scale_up_stabilization: Window | None = None
    scale_down_stabilization: Window | None = None
    # Context (runtime/context.py): whose pods are measured (default: the ScaledObject's name in its
    # namespace, the usual convention); the database, read only when named (the cache: not read yet).
    workload: ObjectName | None = None
    namespace: Namespace | None = None
    database: Instance | None = None
    cache: Instance | None = None
    context: Literal["on", "off"] = "on"


class MetadataParser:
    """Validates scalerMetadata against the common keys plus the chosen source's own keys."""

    def __init__(self, sources: Mapping[str, Any], models: ModelsSettings, model_names: typing.Iterable[str],
                 provisioning: ProvisioningSettings | None = None, pod_startup: float | None = None,
                 namespace_sources: Mapping[str, Sequence[str]] | None = None):
        """`namespace_sources`: which sources the ScaledObjects of a namespace may use, by namespace glob
        (the first that matches decides; a namespace none matches may use none); None or empty: any."""
        self._sources = sources
        self._namespace_sources = dict(namespace_sources or {})
        self._defaults = models
        self._provisioning = provisioning or ProvisioningSettings()
        self._pod_startup = ScalingPolicy().pod_startup_seconds if pod_startup is None else pod_startup
        self._model_names = sorted(model_names)
        self._params = {name: src.Params for name, src in sources.items()}
        self._schemas = {name: _schema_for(name, params) for name, params in self._params.items()}
        self.parse = lru_cache(maxsize=4096)(self._parse)  # same metadata on every poll: parse once

    def __call__(self, namespace: str, name: str, metadata: Mapping[str, str]) -> TriggerSpec:
        return self.parse(namespace, name, tuple(sorted(metadata.items())))

    def _parse(self, namespace: str, name: str, items: tuple[tuple[str, str], ...]) -> TriggerSpec:
        given, spelled, problems = from_env(items)
        try:
            spec = self._parse_keys(namespace, name, given)
        except InvalidMetadata as e:
            raise InvalidMetadata(problems + [_as_written(p, spelled) for p in e.problems]) from None
        if problems:
            raise InvalidMetadata(problems)
        return spec

    def _parse_keys(self, namespace: str, name: str, given: dict[str, str]) -> TriggerSpec:
        given = {k: v for k, v in given.items() if k not in KEDA_KEYS}
        problems: list[str] = []
        source = given.get("source")
        schema = self._schemas.get(source)
        if schema is None:
            allowed = ", ".join(sorted(self._schemas))
            problems.append(f"source: required, one of {allowed}" if source is None
                            else f"source={source!r}: unknown source; allowed: {allowed}")
            schema, given = _CommonKeys, {k: v for k, v in given.items() if k in _COMMON_ALIASES}
        model = given.get("model")
        if model is not None and model not in self._model_names:
            problems.append(f"model={model!r}: unknown model; allowed: {', '.join(self._model_names)}")
        problems += self._window_problems(given)
        problems += self._namespace_problems(namespace, source)
        try:
            keys = schema.model_validate(given)
        except ValidationError as e:
            problems += [_describe(err, given, schema) for err in e.errors() if err["loc"] != ("source",)]
        if problems:
            raise InvalidMetadata(problems)
        spec = self._spec(namespace, name, keys)
        self._admit(spec, given)  # nothing is fetched before the operator's allow-lists admit the trigger
        return spec

    def _namespace_problems(self, namespace: str, source: str | None) -> list[str]:
        if not self._namespace_sources or source not in self._schemas:
            return []
        for pattern, allowed in self._namespace_sources.items():
            if fnmatch.fnmatchcase(namespace, pattern):
                if source in allowed:
                    return []
                may = ", ".join(allowed) if allowed else "no source"
                return [f"source={source!r}: namespace {namespace!r} may use {may} (security.namespace_sources "
                        f"{pattern!r})"]
        return [f"source={source!r}: namespace {namespace!r} may use no source (no security.namespace_sources "
                "pattern matches it)"]

    def _admit(self, spec: TriggerSpec, given: Mapping[str, str]) -> None:
        admit = getattr(self._sources[spec.source], "admit", None)
        if admit is None:
            return
        try:
            admit(spec.source_params, spec.namespace)
        except Refused as e:
            key = to_camel(e.key)
            raise InvalidMetadata([f"{key}={given.get(key)!r}: {e.reason}"]) from None

    def _window_problems(self, given: Mapping[str, str]) -> list[str]:
        """leadTime must fit in horizon, either of them possibly defaulted (checked apart from the
        per-key checks so that it is reported together with them)."""
        try:
            horizon = parse_duration(given.get("horizon", self._defaults.horizon))
            lead = parse_duration(given.get("leadTime", min(self._defaults.lead_time, horizon)))
        except ValueError:
            return []  # the per-key check reports the unparsable one
        if lead <= horizon:
            return []
        return [f"leadTime={given.get('leadTime', format_duration(lead))!r}: must not exceed "
                f"horizon ({format_duration(horizon)}); a forecast cannot look further than it reaches"]

    def _spec(self, namespace: str, name: str, keys: _CommonKeys) -> TriggerSpec:
        d = self._defaults
        params_cls = self._params[keys.source]
        own = {f.name: getattr(keys, f.name) for f in dataclasses.fields(params_cls)}
        horizon = keys.horizon or d.horizon
        return TriggerSpec(
            namespace=namespace,
            name=name,
            metric_name=keys.metric_name or derived_metric_name(keys.source, own),
            source=keys.source,
            source_params=params_cls(**own),
            target_value=keys.target_value,
            activation_value=keys.activation_value,
            horizon=horizon,
            lead_time=keys.lead_time or min(d.lead_time, horizon),
            model=keys.model or d.default,
            quantile=keys.quantile if keys.quantile is not None else d.quantile,
            mode=keys.mode,
            signal=keys.signal,
            slo=self._slo(keys),
            cluster=self._cluster(keys),
            context=self._context(namespace, name, keys, own),
        )

    @staticmethod
    def _context(namespace: str, name: str, keys: _CommonKeys, own: Mapping[str, Any]) -> ContextSpec | None:
        if keys.context == "off":
            return None
        # CloudWatch's own `namespace` key is its metric namespace (AWS/ELB): there the pods are the
        # ScaledObject's namespace's.
        pods_namespace = namespace if "namespace" in own else keys.namespace or namespace
        return ContextSpec(pods_namespace, keys.workload or name, keys.database, keys.cache)

    def _slo(self, keys: _CommonKeys) -> SLO | None:
        """The shortfall target, unless the trigger fixes its quantile (or the config turns targets off)."""
        p = self._provisioning
        target = keys.target_shortfall if keys.target_shortfall is not None else p.target_shortfall
        if keys.quantile is not None or target is None:
            return None
        return SLO(target, keys.cost_cap if keys.cost_cap is not None else p.cost_cap)

    def _cluster(self, keys: _CommonKeys) -> Cluster:
        """The HPA the replay assumes: KEDA passes neither the ScaledObject's behavior nor its polling
        interval to a scaler, so they come from these keys, else the config, else Kubernetes' defaults."""
        p = self._provisioning

        def given(value, default):
            return default if value is None else value

        up = given(keys.scale_up_stabilization, p.scale_up_stabilization)
        down = given(keys.scale_down_stabilization, p.scale_down_stabilization)
        return Cluster(
            target_value=keys.target_value, capacity=keys.target_value,
            startup_delay=given(keys.pod_startup, self._pod_startup), polling_interval=p.polling_interval,
            tolerance=given(keys.hpa_tolerance, p.tolerance),
            behavior=Behavior(scale_up=ScaleUpRules(stabilization_window_seconds=round(up)),
                              scale_down=ScaleDownRules(stabilization_window_seconds=round(down))),
        )


_COMMON_ALIASES = frozenset(to_camel(f) for f in _CommonKeys.model_fields)
FROM_ENV = "FromEnv"


def from_env(items: typing.Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """KEDA's `<key>FromEnv: ENV_NAME` arrives as `<key>FromEnv` holding the variable's value, already
    resolved from the scale target's containers (KEDA's parseExternalScalerMetadata): it is `<key>`.
    Returns the keys under their plain names, how each was written (for error messages), and a
    problem for each key given both ways."""
    given: dict[str, str] = {}
    spelled: dict[str, str] = {}
    problems: list[str] = []
    for key, value in items:
        plain = key.removesuffix(FROM_ENV) if key.endswith(FROM_ENV) and key != FROM_ENV else key
        if plain in given:
            first = spelled[plain]
            problems.append(f"{first}={given[plain]!r} and {key}={value!r}: the same key twice; give one of them")
            continue
        given[plain], spelled[plain] = value, key
    return given, spelled, problems


def _as_written(problem: str, spelled: Mapping[str, str]) -> str:
    """A problem that starts with a plain key (`targetValue=...`, `targetValue: ...`) names it as the
    user wrote it (`targetValueFromEnv=...`)."""
    key = re.match(r"[A-Za-z]\w*", problem)
    if key and spelled.get(key.group()) not in (None, key.group()) and problem[key.end():key.end() + 1] in ("=", ":"):
        return spelled[key.group()] + problem[key.end():]
    return problem


def derived_metric_name(source: str, params: Mapping[str, Any]) -> str:
    """`helios-<source>-<hash of the source's keys>`: stable across restarts and replicas, path-safe,
    and different for two triggers that read different signals. Tuning keys (quantile, targetValue,
    ...) do not change it, so retuning a trigger does not rename the HPA's metric."""
    canonical = json.dumps(params, sort_keys=True, default=str)
    return f"helios-{source}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def _schema_for(source: str, params_cls: type) -> type[_CommonKeys]:
    hints = typing.get_type_hints(params_cls)
    fields = {}
    for f in dataclasses.fields(params_cls):
        default = f.default if f.default is not dataclasses.MISSING else ...
        fields[f.name] = (hints[f.name], default)
    return create_model(f"{source.title()}Trigger", __base__=_CommonKeys, **fields)


def _describe(err: dict, given: Mapping[str, str], schema: type[BaseModel]) -> str:
    key = str(err["loc"][0]) if err["loc"] else ""
    value = given.get(key)
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(f.alias or n for n, f in schema.model_fields.items()))
        return f"{key}={value!r}: unknown key; allowed keys: {allowed} (each also as <key>FromEnv)"
    if err["type"] == "missing":
        return f"{key}: required"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{key}={value!r}: {msg}" if key else msg
