"""The `sources:` configuration section: how the process reaches each metric source.

Triggers name a source and its query; where that source lives and which credentials reach it is the
operator's, configured once here (secrets best through the environment, e.g.
HELIOS_SOURCES__PROMETHEUS__BEARER_TOKEN, or a mounted file). There is one subsection per registered
source that declares a `Settings` model (helios.adapters.SOURCES): the source's own keys, from its
adapter module, with the keys of SourceSection that every source shares. Each subsection's keys, less
the shared retry keys, are the keyword arguments of that source's adapter (see scaler/config/sources.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, create_model, field_validator

from helios.adapters import SOURCES
from helios.adapters.metrics import METRIC_RULES
from helios.adapters.retry import RetryPolicy

from .durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
RETRY_KEYS = ("timeout", "attempts", "backoff_initial", "backoff_max")


class SourceSection(BaseModel):
    """Keys every source has: per-request timeout, retries of outages, gap filling, query overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Seconds = 5.0  # one request; the whole fetch is bounded by metrics.fetch_timeout
    attempts: int = Field(3, ge=1, le=10)  # tries of a request that failed with an outage
    backoff_initial: Seconds = 0.5  # the first retry waits up to this; doubling, with full jitter
    backoff_max: Seconds = 5.0
    max_gap_steps: int = Field(3, ge=0)  # empty steps filled by interpolation; longer gaps stay missing
    queries: dict[str, str] = {}  # metric key -> the source's native query, replacing the built-in one

    @field_validator("queries")
    @classmethod
    def _known_metrics(cls, queries: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(queries) - set(METRIC_RULES))
        if unknown:
            raise ValueError(f"unknown metric {', '.join(map(repr, unknown))}; allowed: {', '.join(METRIC_RULES)}")
        return queries

    def adapter_kwargs(self, step: float, deadline: float) -> dict[str, Any]:
        """Keyword arguments for the adapter: plain values, secrets revealed, retries as a RetryPolicy."""
        values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self}
        retry = RetryPolicy(deadline=deadline, **{k: values.pop(k) for k in RETRY_KEYS})
        return {**values, "retry": retry, "step": int(step)}


def section_for(source: type) -> type[SourceSection]:
    """The subsection of `source`: its own Settings first, so that its keys (a typed `queries`) win
    over SourceSection's, which still brings the shared keys, their validation and the config.
    `PrometheusSettings` makes `PrometheusSourceSettings`, the name validation errors show."""
    own = source.Settings
    return create_model(own.__name__.removesuffix("Settings") + "SourceSettings", __base__=(own, SourceSection),
                        __module__=__name__, __doc__=own.__doc__)


class _Sections(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SECTIONS: dict[str, type[SourceSection]] = {
    name: section_for(source) for name, source in SOURCES.items() if hasattr(source, "Settings")
}

SourcesSettings = create_model(
    "SourcesSettings", __base__=_Sections, __module__=__name__,
    __doc__="One subsection per configurable source; sources without one are built with no arguments.",
    **{name: (section, section()) for name, section in SECTIONS.items()},
)
