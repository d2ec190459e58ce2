"""One deadline shared by every call a request makes."""

import time


class Deadline:
    """Counts down from `seconds`; every outgoing call gets what is left."""

    def __init__(self, seconds: float, cap: float | None = None) -> None:
        """Starts the clock; `cap` (the caller's own time left, if any) shortens it."""
        if cap is not None:
            seconds = min(seconds, cap)
        self._end = time.monotonic() + seconds

    def left(self, share: float = 1.0) -> float:
        """Seconds left, or `share` of them for a step that must leave time to later ones."""
        return max(0.0, self._end - time.monotonic()) * share
