import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkloadRef(_message.Message):
    __slots__ = ("namespace", "name", "metric_name")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    metric_name: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., metric_name: _Optional[str] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("timestamp", "value")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    value: float
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("samples", "step")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    step: str
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., step: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("workload", "series", "horizon", "model", "interval_level")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    workload: WorkloadRef
    series: Series
    horizon: str
    model: str
    interval_level: float
    def __init__(self, workload: _Optional[_Union[WorkloadRef, _Mapping]] = ..., series: _Optional[_Union[Series, _Mapping]] = ..., horizon: _Optional[str] = ..., model: _Optional[str] = ..., interval_level: _Optional[float] = ...) -> None: ...

class ForecastPoint(_message.Message):
    __slots__ = ("timestamp", "value", "lower", "upper")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    value: float
    lower: float
    upper: float
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model", "interval_level", "points", "made_at", "data_end")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MADE_AT_FIELD_NUMBER: _ClassVar[int]
    DATA_END_FIELD_NUMBER: _ClassVar[int]
    model: str
    interval_level: float
    points: _containers.RepeatedCompositeFieldContainer[ForecastPoint]
    made_at: _timestamp_pb2.Timestamp
    data_end: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., interval_level: _Optional[float] = ..., points: _Optional[_Iterable[_Union[ForecastPoint, _Mapping]]] = ..., made_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWorkloadsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class WorkloadStatus(_message.Message):
    __slots__ = ("ref", "source", "model", "mode", "target_value", "observed_value", "served_value", "last_refresh", "forecast_age_seconds", "stale", "last_error", "consecutive_failures", "forecast_model", "fitted_at", "selection_losses", "model_version", "backtest_scores", "provisioning", "owner")
    class SelectionLossesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BacktestScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_VALUE_FIELD_NUMBER: _ClassVar[int]
    SERVED_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_FIELD_NUMBER: _ClassVar[int]
    FORECAST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MODEL_FIELD_NUMBER: _ClassVar[int]
    FITTED_AT_FIELD_NUMBER: _ClassVar[int]
    SELECTION_LOSSES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_SCORES_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ref: WorkloadRef
    source: str
    model: str
    mode: str
    target_value: float
    observed_value: float
    served_value: float
    last_refresh: _timestamp_pb2.Timestamp
    forecast_age_seconds: float
    stale: bool
    last_error: str
    consecutive_failures: int
    forecast_model: str
    fitted_at: _timestamp_pb2.Timestamp
    selection_losses: _containers.ScalarMap[str, float]
    model_version: str
    backtest_scores: _containers.ScalarMap[str, float]
    provisioning: Provisioning
    owner: str
    def __init__(self, ref: _Optional[_Union[WorkloadRef, _Mapping]] = ..., source: _Optional[str] = ..., model: _Optional[str] = ..., mode: _Optional[str] = ..., target_value: _Optional[float] = ..., observed_value: _Optional[float] = ..., served_value: _Optional[float] = ..., last_refresh: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forecast_age_seconds: _Optional[float] = ..., stale: _Optional[bool] = ..., last_error: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., forecast_model: _Optional[str] = ..., fitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., selection_losses: _Optional[_Mapping[str, float]] = ..., model_version: _Optional[str] = ..., backtest_scores: _Optional[_Mapping[str, float]] = ..., provisioning: _Optional[_Union[Provisioning, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class Provisioning(_message.Message):
    __slots__ = ("basis", "plan", "target_shortfall", "attainable", "chosen", "headroom", "replayed_hours", "reason")
    BASIS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    TARGET_SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    ATTAINABLE_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_HOURS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    basis: str
    plan: str
    target_shortfall: float
    attainable: bool
    chosen: ReplayOutcome
    headroom: ReplayOutcome
    replayed_hours: float
    reason: str
    def __init__(self, basis: _Optional[str] = ..., plan: _Optional[str] = ..., target_shortfall: _Optional[float] = ..., attainable: _Optional[bool] = ..., chosen: _Optional[_Union[ReplayOutcome, _Mapping]] = ..., headroom: _Optional[_Union[ReplayOutcome, _Mapping]] = ..., replayed_hours: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class ReplayOutcome(_message.Message):
    __slots__ = ("plan", "shortfall", "unserved", "replica_hours_vs_reactive")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_FIELD_NUMBER: _ClassVar[int]
    REPLICA_HOURS_VS_REACTIVE_FIELD_NUMBER: _ClassVar[int]
    plan: str
    shortfall: float
    unserved: float
    replica_hours_vs_reactive: float
    def __init__(self, plan: _Optional[str] = ..., shortfall: _Optional[float] = ..., unserved: _Optional[float] = ..., replica_hours_vs_reactive: _Optional[float] = ...) -> None: ...

class ListWorkloadsResponse(_message.Message):
    __slots__ = ("workloads",)
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedCompositeFieldContainer[WorkloadStatus]
    def __init__(self, workloads: _Optional[_Iterable[_Union[WorkloadStatus, _Mapping]]] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("workload", "series", "detector", "last")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    workload: WorkloadRef
    series: Series
    detector: str
    last: int
    def __init__(self, workload: _Optional[_Union[WorkloadRef, _Mapping]] = ..., series: _Optional[_Union[Series, _Mapping]] = ..., detector: _Optional[str] = ..., last: _Optional[int] = ...) -> None: ...

class AnomalyPoint(_message.Message):
    __slots__ = ("timestamp", "value", "score", "anomaly", "severity", "likelihood", "alert", "drivers", "beyond_range", "range_low", "range_high")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    BEYOND_RANGE_FIELD_NUMBER: _ClassVar[int]
    RANGE_LOW_FIELD_NUMBER: _ClassVar[int]
    RANGE_HIGH_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    value: float
    score: float
    anomaly: bool
    severity: str
    likelihood: float
    alert: bool
    drivers: _containers.RepeatedCompositeFieldContainer[Driver]
    beyond_range: bool
    range_low: float
    range_high: float
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., score: _Optional[float] = ..., anomaly: _Optional[bool] = ..., severity: _Optional[str] = ..., likelihood: _Optional[float] = ..., alert: _Optional[bool] = ..., drivers: _Optional[_Iterable[_Union[Driver, _Mapping]]] = ..., beyond_range: _Optional[bool] = ..., range_low: _Optional[float] = ..., range_high: _Optional[float] = ...) -> None: ...

class Driver(_message.Message):
    __slots__ = ("feature", "value", "contribution")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    contribution: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., contribution: _Optional[float] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("detector", "points", "flagged", "latest")
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    detector: str
    points: _containers.RepeatedCompositeFieldContainer[AnomalyPoint]
    flagged: int
    latest: AnomalyPoint
    def __init__(self, detector: _Optional[str] = ..., points: _Optional[_Iterable[_Union[AnomalyPoint, _Mapping]]] = ..., flagged: _Optional[int] = ..., latest: _Optional[_Union[AnomalyPoint, _Mapping]] = ...) -> None: ...

class RecommendInputs(_message.Message):
    __slots__ = ("load", "forecast", "forecast_interval_level", "capacity_per_replica", "cpu_usage_cores", "cpu_request_cores", "memory_usage_bytes", "memory_limit_bytes", "anomaly_score")
    LOAD_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    FORECAST_INTERVAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_PER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    CPU_USAGE_CORES_FIELD_NUMBER: _ClassVar[int]
    CPU_REQUEST_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_SCORE_FIELD_NUMBER: _ClassVar[int]
    load: Series
    forecast: _containers.RepeatedCompositeFieldContainer[ForecastPoint]
    forecast_interval_level: float
    capacity_per_replica: float
    cpu_usage_cores: Series
    cpu_request_cores: float
    memory_usage_bytes: Series
    memory_limit_bytes: float
    anomaly_score: float
    def __init__(self, load: _Optional[_Union[Series, _Mapping]] = ..., forecast: _Optional[_Iterable[_Union[ForecastPoint, _Mapping]]] = ..., forecast_interval_level: _Optional[float] = ..., capacity_per_replica: _Optional[float] = ..., cpu_usage_cores: _Optional[_Union[Series, _Mapping]] = ..., cpu_request_cores: _Optional[float] = ..., memory_usage_bytes: _Optional[_Union[Series, _Mapping]] = ..., memory_limit_bytes: _Optional[float] = ..., anomaly_score: _Optional[float] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("workload", "inputs", "current_replicas")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    workload: WorkloadRef
    inputs: RecommendInputs
    current_replicas: int
    def __init__(self, workload: _Optional[_Union[WorkloadRef, _Mapping]] = ..., inputs: _Optional[_Union[RecommendInputs, _Mapping]] = ..., current_replicas: _Optional[int] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("action", "detail")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    action: str
    detail: str
    def __init__(self, action: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ResourceSuggestion(_message.Message):
    __slots__ = ("resource", "current", "suggested", "unit", "basis")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    current: float
    suggested: float
    unit: str
    basis: str
    def __init__(self, resource: _Optional[str] = ..., current: _Optional[float] = ..., suggested: _Optional[float] = ..., unit: _Optional[str] = ..., basis: _Optional[str] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("action", "target_replicas", "current_replicas", "reason", "confidence", "urgency", "conditions", "resources", "suppressed_by_cooldown", "current_replicas_source", "made_at")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REPLICAS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MADE_AT_FIELD_NUMBER: _ClassVar[int]
    action: str
    target_replicas: int
    current_replicas: int
    reason: str
    confidence: float
    urgency: str
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    resources: _containers.RepeatedCompositeFieldContainer[ResourceSuggestion]
    suppressed_by_cooldown: bool
    current_replicas_source: str
    made_at: _timestamp_pb2.Timestamp
    def __init__(self, action: _Optional[str] = ..., target_replicas: _Optional[int] = ..., current_replicas: _Optional[int] = ..., reason: _Optional[str] = ..., confidence: _Optional[float] = ..., urgency: _Optional[str] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., resources: _Optional[_Iterable[_Union[ResourceSuggestion, _Mapping]]] = ..., suppressed_by_cooldown: _Optional[bool] = ..., current_replicas_source: _Optional[str] = ..., made_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "description", "is_default", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    is_default: bool
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., is_default: _Optional[bool] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LoadedModel(_message.Message):
    __slots__ = ("ref", "model", "forecast_model", "version", "fitted_at", "backtest_scores", "selection_losses", "detector")
    class BacktestScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SelectionLossesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FITTED_AT_FIELD_NUMBER: _ClassVar[int]
    BACKTEST_SCORES_FIELD_NUMBER: _ClassVar[int]
    SELECTION_LOSSES_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    ref: WorkloadRef
    model: str
    forecast_model: str
    version: str
    fitted_at: _timestamp_pb2.Timestamp
    backtest_scores: _containers.ScalarMap[str, float]
    selection_losses: _containers.ScalarMap[str, float]
    detector: str
    def __init__(self, ref: _Optional[_Union[WorkloadRef, _Mapping]] = ..., model: _Optional[str] = ..., forecast_model: _Optional[str] = ..., version: _Optional[str] = ..., fitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backtest_scores: _Optional[_Mapping[str, float]] = ..., selection_losses: _Optional[_Mapping[str, float]] = ..., detector: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "detectors", "loaded")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DETECTORS_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    detectors: _containers.RepeatedScalarFieldContainer[str]
    loaded: _containers.RepeatedCompositeFieldContainer[LoadedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., detectors: _Optional[_Iterable[str]] = ..., loaded: _Optional[_Iterable[_Union[LoadedModel, _Mapping]]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("workload", "horizon")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    workload: WorkloadRef
    horizon: str
    def __init__(self, workload: _Optional[_Union[WorkloadRef, _Mapping]] = ..., horizon: _Optional[str] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("status", "recent_inputs", "forecast", "model_choice", "served_value_reason", "anomaly", "recommendation", "rolling_mape", "rolling_interval_coverage", "rolling_matured")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECENT_INPUTS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    MODEL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    SERVED_VALUE_REASON_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    ROLLING_MAPE_FIELD_NUMBER: _ClassVar[int]
    ROLLING_INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    ROLLING_MATURED_FIELD_NUMBER: _ClassVar[int]
    status: WorkloadStatus
    recent_inputs: _containers.RepeatedCompositeFieldContainer[Sample]
    forecast: PredictResponse
    model_choice: str
    served_value_reason: str
    anomaly: AnomalyPoint
    recommendation: Recommendation
    rolling_mape: float
    rolling_interval_coverage: float
    rolling_matured: int
    def __init__(self, status: _Optional[_Union[WorkloadStatus, _Mapping]] = ..., recent_inputs: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., forecast: _Optional[_Union[PredictResponse, _Mapping]] = ..., model_choice: _Optional[str] = ..., served_value_reason: _Optional[str] = ..., anomaly: _Optional[_Union[AnomalyPoint, _Mapping]] = ..., recommendation: _Optional[_Union[Recommendation, _Mapping]] = ..., rolling_mape: _Optional[float] = ..., rolling_interval_coverage: _Optional[float] = ..., rolling_matured: _Optional[int] = ...) -> None: ...
