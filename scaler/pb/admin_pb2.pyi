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
    __slots__ = ("ref", "source", "model", "mode", "target_value", "observed_value", "served_value", "last_refresh", "forecast_age_seconds", "stale", "last_error", "consecutive_failures", "forecast_model", "fitted_at", "selection_losses", "model_version", "backtest_scores")
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
    def __init__(self, ref: _Optional[_Union[WorkloadRef, _Mapping]] = ..., source: _Optional[str] = ..., model: _Optional[str] = ..., mode: _Optional[str] = ..., target_value: _Optional[float] = ..., observed_value: _Optional[float] = ..., served_value: _Optional[float] = ..., last_refresh: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forecast_age_seconds: _Optional[float] = ..., stale: _Optional[bool] = ..., last_error: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., forecast_model: _Optional[str] = ..., fitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., selection_losses: _Optional[_Mapping[str, float]] = ..., model_version: _Optional[str] = ..., backtest_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListWorkloadsResponse(_message.Message):
    __slots__ = ("workloads",)
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedCompositeFieldContainer[WorkloadStatus]
    def __init__(self, workloads: _Optional[_Iterable[_Union[WorkloadStatus, _Mapping]]] = ...) -> None: ...
