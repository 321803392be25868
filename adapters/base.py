"""The contract every metric source meets. The scaler never knows which source it talks to."""

from typing import ClassVar, Protocol

from helios.engine.types import Series


class MetricSource(Protocol):
    """Reads one trigger's load signal.

    `Params` is a frozen dataclass of the trigger-metadata keys this source reads (snake_case here,
    camelCase in the ScaledObject: `server_address` is `serverAddress`). The scaler validates the
    metadata into it and hands the instance back to `fetch`.
    """

    name: ClassVar[str]
    Params: ClassVar[type]

    def fetch(self, params, start: int, end: int, step: int) -> Series:
        """Samples in [start, end] (Unix seconds), about `step` apart, oldest first.

        Raises engine.errors.SourceError subclasses: SourceUnavailable for outages, BadQuery for a
        query the source rejects, NoData for an empty answer, SourceUnauthorized for credentials.
        """
        ...
