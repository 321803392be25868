"""Metric sources, one module each, looked up by the trigger's `source` key."""

from .azure import AzureMonitorSource
from .base import MetricSource
from .cloudwatch import CloudWatchSource
from .demo import DemoSource
from .file import FileSource
from .gcp import GcpMonitoringSource
from .prometheus import PrometheusSource

SOURCES: dict[str, type] = {
    s.name: s
    for s in (DemoSource, FileSource, PrometheusSource, GcpMonitoringSource, CloudWatchSource, AzureMonitorSource)
}

__all__ = ["SOURCES", "MetricSource"]
