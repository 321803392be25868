"""The contract every metric source meets. The scaler never knows which source it talks to."""

from typing import ClassVar, Protocol

from helios.engine.types import Series


class MetricSource(Protocol):
    """Reads one trigger's load signal.

    `Params` is a frozen dataclass of the trigger-metadata keys this source reads (snake_case here,
    camelCase in the ScaledObject: `server_address` is `serverAddress`). The scaler validates the
    metadata into it and hands the instance back to `fetch`.

    A source the operator configures also has `Settings`, a pydantic model of its own keys under
    `sources.<name>` (a URL, credentials, its `queries`); the scaler adds the keys every source shares
    (timeouts, retries, gap filling) and passes them all to the source's constructor as keyword
    arguments. A source without `Settings` (demo, file) has no section and is built with none.
    """

    name: ClassVar[str]
    Params: ClassVar[type]

    def fetch(self, params, start: int, end: int, step: int) -> Series:
        """Samples in [start, end] (Unix seconds), about `step` apart, oldest first.

        Raises engine.errors.SourceError subclasses: SourceUnavailable for outages, BadQuery for a
        query the source rejects, NoData for an empty answer, SourceUnauthorized for credentials.
        """
        ...
