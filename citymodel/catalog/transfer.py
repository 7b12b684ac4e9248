"""Time and size bounds of one transfer: the total deadline, the minimum rate, the largest body.

A server that drips one byte every few seconds never trips a socket timeout; a server that sends
without end fills the disk. :class:`TransferLimits` bounds both: a total deadline for one download
(all its retries included) or one catalog read, a minimum rate measured over a window (a transfer
slower than that over the window is cut off), and a largest body. :class:`Deadline` is the clock
of one such download; :class:`RateGuard` watches the bytes of one attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferLimits:
    """Bounds of a transfer (deployment keys in brackets).

    Parameters
    ----------
    deadline_s : float
        Total time of one download or catalog read, retries included
        (``catalog.download_deadline_s``).
    min_rate_bytes_s : float
        Slower than this over ``window_s`` is cut off; 0: no minimum (``catalog.min_rate_bytes_s``).
    window_s : float
        Window of the rate (``catalog.timeout_s``).
    """

    deadline_s: float = 3600.0
    min_rate_bytes_s: float = 10_000.0
    window_s: float = 30.0


class Deadline:
    """The clock of one download: seconds left of ``seconds`` from now (monotonic)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._start = time.monotonic()

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self._start)

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class TooSlow(Exception):
    """The transfer fell below the minimum rate over a whole window (the message says how slow)."""


class RateGuard:
    """Watches the bytes of one attempt; :meth:`update` raises :class:`TooSlow` when fewer than
    ``min_rate_bytes_s * window`` bytes arrived during a window of ``window_s`` seconds."""

    def __init__(self, min_rate_bytes_s: float, window_s: float):
        self.min_rate = float(min_rate_bytes_s)
        self.window_s = float(window_s)
        self._t0 = time.monotonic()
        self._n0 = 0

    def update(self, total_bytes: int) -> None:
        """Called whenever data arrived; ``total_bytes`` so far in this attempt."""
        if self.min_rate <= 0:
            return
        now = time.monotonic()
        span = now - self._t0
        if span < self.window_s:
            return
        rate = (total_bytes - self._n0) / span
        if rate < self.min_rate:
            raise TooSlow(f"the transfer ran at {rate:.1f} bytes/s over {span:.1f} s, below "
                          f"catalog.min_rate_bytes_s = {self.min_rate:g} (after {total_bytes} bytes)")
        self._t0, self._n0 = now, total_bytes
