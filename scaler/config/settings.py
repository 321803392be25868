"""Server configuration: defaults < YAML file (`--config`) < `HELIOS_*` environment < command-line flags.

Environment variables name nested keys with `__`: HELIOS_MODELS__QUANTILE=0.95 sets models.quantile.
Durations are strings such as "30s", "5m", "1h30m". Every problem is reported at once, at start.
"""

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

from helios.engine.anomaly import NAMES as DETECTORS
from helios.engine.models import MODELS
from helios.engine.recommend import ScalingPolicy
from helios.engine.replay.loop import Cluster
from helios.engine.replay.provision import SLO

from .durations import parse_duration
from .security import SecuritySettings
from .source_settings import SourcesSettings

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]  # 0 picks a free port (tests)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "[::]"  # gRPC listens here
    grpc_port: Port = 6000
    metrics_host: str = "0.0.0.0"
    metrics_port: Port = 8080
    shutdown_grace: Seconds = 10.0  # in-flight calls get this long to finish after SIGTERM
    stream_check_interval: Seconds = 5.0  # StreamIsActive re-evaluates activity this often


class MetricsSettings(_Section):
    step: Seconds = 300.0  # the grid every series is aligned to
    history: Seconds = 7 * 86400.0  # the window models read (auto, prophet need > 3 days); runtime/kept.py
    refresh_interval: Seconds = 30.0
    fetch_timeout: Seconds = 10.0
    staleness_limit: Seconds = 600.0  # older than this since the last good refresh: UNAVAILABLE
    idle_timeout: Seconds = 3600.0  # a workload nobody asked about for this long is dropped
    first_answer_wait: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=2)] = 1.0

    @model_validator(mode="after")
    def _consistent(self):
        if self.history < 2 * self.step:
            raise ValueError(f"history ({self.history:g}s) must cover at least 2 steps of {self.step:g}s")
        if self.staleness_limit < self.refresh_interval:
            raise ValueError("staleness_limit must be at least refresh_interval")
        return self


# The models own their defaults; these sections only expose them (as ScalingSettings does the policy's).
_BASELINE = MODELS["baseline"]().params
_AUTO = MODELS["auto"]().params


class BaselineSettings(_Section):
    window: int = Field(_BASELINE["window"], ge=1)
    trend_window: int = Field(_BASELINE["trend_window"], ge=2)
    calibration_window: int = Field(_BASELINE["calibration_window"], ge=1)


class AutoSettings(_Section):
    candidates: list[str] = _AUTO["candidates"]
    holdout_seconds: Seconds = float(_AUTO["holdout_seconds"])  # the end of the history each candidate is judged on
    origins: int = Field(_AUTO["origins"], ge=1, le=300)  # many: a choice on few origins is mostly noise

    @field_validator("candidates")
    @classmethod
    def _known_models(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in MODELS or n == "auto"]
        if unknown:
            allowed = ", ".join(sorted(m for m in MODELS if m != "auto"))
            raise ValueError(f"unknown candidate {', '.join(map(repr, unknown))}; allowed: {allowed}")
        return names


class ModelsSettings(_Section):
    default: str = "ets"
    horizon: Seconds = 1800.0
    lead_time: Seconds = 300.0
    # 0.7: most traces with half the shortfalls of reactive scaling for <= 10% more replicas (benchmarks/scaling.py)
    quantile: float = Field(0.7, ge=0.5, le=0.99)
    interval_level: float = Field(0.8, gt=0, le=0.98)
    workers: int = Field(1, ge=1, le=64)  # processes that fit models, off the gRPC threads
    fit_timeout: Seconds = 60.0
    refit_interval: Seconds = 3600.0  # between fits, the fitted model only follows new data
    # Where `helios train` stores models (a folder or an fsspec URL: s3://bucket/prefix, gs://...):
    # each workload starts from its newest complete version, and adopts newer ones as they appear.
    artifacts: str | None = None
    artifacts_poll_interval: Seconds = 300.0  # how often each workload looks for a newer version
    baseline: BaselineSettings = BaselineSettings()
    auto: AutoSettings = AutoSettings()

    @field_validator("default")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
        return name

    @model_validator(mode="after")
    def _lead_within_horizon(self):
        if self.lead_time > self.horizon:
            raise ValueError(f"lead_time ({self.lead_time:g}s) must not exceed horizon ({self.horizon:g}s)")
        return self

    def params_for(self, model: str, horizon_steps: int | None = None, quantile: float | None = None,
                   ) -> dict[str, Any]:
        """The configured parameters of `model`; auto also gets the horizon and quantile it is judged
        on (it chooses by how well each candidate forecasts what the trigger is served) and its
        candidates' own parameters."""
        section = getattr(self, model, None)
        params = section.model_dump() if isinstance(section, BaseModel) else {}
        if model == "auto":
            if horizon_steps is None:
                raise ValueError("auto is judged at a horizon: pass horizon_steps")
            params["horizon"] = horizon_steps
            params["quantile"] = quantile if quantile is not None else self.quantile
            params["candidate_params"] = {c: self.params_for(c) for c in params["candidates"]}
        return params


def parse_share(value: object) -> float:
    """A shortfall target written as a percentage (`2%`, `2.5%`) or a fraction (`0.02`), in (0, 50 %]."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = math.nan
    if not 0 < share <= 0.5:  # NaN fails too
        raise ValueError("must be a share in (0, 50%], e.g. '2%' or '0.02'")
    return share


def _cost_cap(value: float) -> float:
    if not 1 < value <= 100:
        raise ValueError("must be a number > 1 and <= 100: times the replica-hours of reactive scaling")
    return value


Share = Annotated[float, BeforeValidator(parse_share)]
CostCap = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_cost_cap)]
Window = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=3600)]  # an HPA stabilisation window


# The replay owns these defaults (the SLO's and the HPA's); the section only exposes them.
_SLO, _CLUSTER = SLO(), Cluster()


class ProvisioningSettings(_Section):
    """How much to provision when a trigger sets no `quantile`: the cheapest plan that meets the shortfall
    target in a replay of the workload's own recent history through KEDA + the HPA (engine.replay)."""

    # The share of time a workload may be short of ready capacity; null: serve models.quantile everywhere.
    target_shortfall: Share | None = _SLO.target_shortfall
    cost_cap: CostCap = _SLO.cost_cap  # at most this many times reactive scaling's replica-hours
    replay: Seconds = 2 * 86400.0  # the history replayed at each refit: about 0.4 s of CPU per day replayed
    min_replay: Seconds = 43200.0  # with less history to replay, models.quantile is served (cold start)
    workers: int = Field(1, ge=1, le=64)  # processes that run the replays, apart from the model fits
    # The HPA facts of the replay, which KEDA does not pass to a scaler; triggers may override them.
    polling_interval: Seconds = _CLUSTER.polling_interval  # KEDA's pollingInterval
    tolerance: float = Field(_CLUSTER.tolerance, ge=0, lt=1)  # the HPA's (kube-controller-manager's) tolerance
    # The ScaledObject's behavior: Kubernetes' defaults, as the replay's model of the HPA holds them.
    scale_up_stabilization: Window = float(_CLUSTER.behavior.scale_up.stabilization_window_seconds)
    scale_down_stabilization: Window = float(_CLUSTER.behavior.scale_down.stabilization_window_seconds)


_POLICY = ScalingPolicy()  # the engine owns the defaults and the rules; this section only exposes them


class ScalingSettings(_Section):
    """The recommendation engine's thresholds (engine.recommend.ScalingPolicy); utilisation is the
    workload's load over its capacity (current replicas x the trigger's targetValue)."""

    cpu_scale_up_threshold: float = _POLICY.cpu_scale_up_threshold
    cpu_scale_down_threshold: float = _POLICY.cpu_scale_down_threshold
    memory_warning_threshold: float = _POLICY.memory_warning_threshold
    min_replicas: int = _POLICY.min_replicas
    max_replicas: int = _POLICY.max_replicas
    cooldown_seconds: Seconds = _POLICY.cooldown_seconds  # no opposite replica action within this long
    confidence_threshold: float = _POLICY.confidence_threshold  # SCALE_UP needs more confidence than this
    preemptive_ratio: float = _POLICY.preemptive_ratio  # PREEMPTIVE_SCALE past this x baseline
    pod_startup_seconds: Annotated[float, BeforeValidator(parse_duration), Field(ge=0)] = _POLICY.pod_startup_seconds
    # The resource rules' bounds, as min/max_replicas are the replica rules': the least CPU request
    # DECREASE_CPU suggests, the most memory limit INCREASE_MEMORY suggests (null: none).
    cpu_request_floor_cores: float = _POLICY.cpu_request_floor_cores
    memory_limit_max_bytes: float | None = _POLICY.memory_limit_max_bytes

    @model_validator(mode="after")
    def _valid_policy(self):
        try:
            self.policy()
        except ValueError as e:
            raise ValueError(str(e).removeprefix("scaling.")) from None
        return self

    def policy(self) -> ScalingPolicy:
        return ScalingPolicy(**self.model_dump())


class AnomalySettings(_Section):
    # Scores each workload's newest sample, in its own worker processes so that detection never queues
    # a forecast. xgboost's fit costs ~2 s per workload and only scores (~10 ms) between fits; zscore
    # and threshold are cheap; none turns scoring off.
    detector: Literal[(*DETECTORS, "none")] = "xgboost"  # the engine's registry, or none
    refit_interval: Seconds = 86400.0  # a day: what is normal changes slowly; 5,000 workloads cost ~0.1 core
    workers: int = Field(1, ge=1, le=64)


class ContextSettings(_Section):
    """Each workload's container (and database, cache) context: read by its own source on its own
    schedule, beside the load refresh and never holding it up (runtime/context.py)."""

    enabled: bool = True  # off: no workload's context is read (a trigger turns its own off: `context: off`)
    interval: Seconds = 300.0  # between fetches of one workload's context
    # How much is kept: DECREASE_CPU reads a day of usage (scaling.cpu_window). The first fetch reads it
    # all, later ones only what is new.
    window: Seconds = 86400.0
    concurrency: int = Field(4, ge=1, le=64)  # context fetches at once, in threads of their own


class StateSettings(_Section):
    """Where the workloads' state lives. No Redis (the default): in this process, one replica. With
    `redis_url` (redis:// or rediss://, a password in it from a Secret, e.g. HELIOS_STATE__REDIS_URL),
    several replicas share the work (runtime/cluster.py)."""

    redis_url: SecretStr | None = None
    prefix: str = Field("helios", pattern=r"^[A-Za-z0-9_.:-]+$")  # every key Helios writes starts with it
    heartbeat_ttl: Annotated[float, BeforeValidator(parse_duration), Field(ge=1, le=30)] = 15.0
    replica_id: str = ""  # default: the host name and process ID (a pod's name is its host name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELIOS_", env_nested_delimiter="__", extra="forbid", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    server: ServerSettings = ServerSettings()
    metrics: MetricsSettings = MetricsSettings()
    models: ModelsSettings = ModelsSettings()
    provisioning: ProvisioningSettings = ProvisioningSettings()
    sources: SourcesSettings = SourcesSettings()
    scaling: ScalingSettings = ScalingSettings()
    anomaly: AnomalySettings = AnomalySettings()
    context: ContextSettings = ContextSettings()
    state: StateSettings = StateSettings()
    security: SecuritySettings = SecuritySettings()


class ConfigError(Exception):
    """Invalid configuration; `problems` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; `overrides` are nested dicts from the command line (highest precedence)."""
    if config_file is not None:
        _check_yaml(Path(config_file))

    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **_):
            files = (YamlConfigSettingsSource(settings_cls, yaml_file=config_file),) if config_file else ()
            return (init_settings, env_settings, *files)

    try:
        return _Layered(**overrides)
    except ValidationError as e:
        raise ConfigError([_describe(err) for err in e.errors()]) from None


def _check_yaml(path: Path) -> None:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError([f"{path}: {e.strerror}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML: {e}"]) from None
    if doc is not None and not isinstance(doc, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections (server, metrics, models)"])


def _describe(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if err["type"] == "missing":
        return f"{where}: required"
    if isinstance(err.get("input"), dict):  # a rule across keys: the whole section is no help
        return f"{where}: {msg}"
    return f"{where}: {msg} (got {err.get('input')!r})"
