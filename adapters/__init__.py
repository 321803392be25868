"""Metric sources, one module each, looked up by the trigger's `source` key."""

from .base import MetricSource
from .demo import DemoSource
from .file import FileSource
from .prometheus import PrometheusSource

SOURCES: dict[str, type] = {s.name: s for s in (DemoSource, FileSource, PrometheusSource)}

__all__ = ["SOURCES", "MetricSource"]
