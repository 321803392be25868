"""The Deployment's pods: a new pod serves only `startup_delay` after the HPA created it."""

from __future__ import annotations

import bisect


class Pods:
    def __init__(self, ready: int, startup_delay: float) -> None:
        self.startup_delay = startup_delay
        self._ready_at: list[float] = [float("-inf")] * ready  # sorted: the youngest pod last

    def __len__(self) -> int:
        return len(self._ready_at)

    def scale_to(self, replicas: int, now: float) -> None:
        """Create pods (ready after the startup delay) or delete them at once. Deletion takes the
        youngest first, which is the ReplicaSet's order too: pods not ready yet go before ready ones,
        newer before older."""
        missing = replicas - len(self._ready_at)
        if missing > 0:
            self._ready_at += [now + self.startup_delay] * missing
        elif missing < 0:
            del self._ready_at[replicas:]

    def ready(self, now: float) -> int:
        return bisect.bisect_right(self._ready_at, now)
