"""What the listener lets peers use: associations at once (in all and per host) and what one
association may send.

Each limit answers with the reason as text (logged and, where DICOM allows, told to the peer)
or None when the peer is within it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass


class AssociationCounter:
    """Associations admitted and not yet ended, in all and per peer host.

    Counted from the association request on (not from the TCP connection, so that silent
    connections, closed after the ACSE timeout, never take an association's place). An
    association is counted out when its connection closes (``ended``) or, should that event
    be missed, once its thread has stopped.
    """

    def __init__(self, maximum: int, per_host: int) -> None:
        self.maximum = maximum
        self.per_host = per_host
        self._lock = threading.Lock()
        self._admitted: dict[int, tuple[threading.Thread, str]] = {}  # id -> (thread, host)

    def admit(self, association: threading.Thread, host: str) -> str | None:
        """Count an association in, or say which limit it would exceed."""
        with self._lock:
            self._admitted = {
                key: (thread, peer)
                for key, (thread, peer) in self._admitted.items()
                if thread.is_alive()
            }
            from_host = sum(1 for _, peer in self._admitted.values() if peer == host)
            if len(self._admitted) >= self.maximum:
                return f"{len(self._admitted)} associations already open (maximum {self.maximum})"
            if from_host >= self.per_host:
                return (
                    f"{from_host} associations already open from {host} "
                    f"(maximum {self.per_host} per host)"
                )
            self._admitted[id(association)] = (association, host)
            return None

    def ended(self, association: threading.Thread) -> None:
        with self._lock:
            self._admitted.pop(id(association), None)

    def open(self) -> int:
        with self._lock:
            return len(self._admitted)


@dataclass
class AssociationBudget:
    """The data set bytes and instances one association may send (0: no limit)."""

    max_bytes: int
    max_instances: int
    bytes: int = 0
    instances: int = 0
    dropped: int = 0  # bytes of the data set being received that were not kept (over budget)

    def may_receive(self, size: int) -> bool:
        """Whether a data set of ``size`` bytes (so far) is within the budget."""
        if self.max_instances and self.instances >= self.max_instances:
            return False
        return not self.max_bytes or self.bytes + size <= self.max_bytes

    def take_dropped(self) -> int:
        """The bytes of a data set dropped as it arrived (0: none), counted once."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    def charge(self, size: int) -> str | None:
        """Count one received data set of ``size`` bytes; say why it is over budget, if it is.

        Every data set counts, kept or refused: the budget bounds what a peer makes the
        listener read, not only what it keeps.
        """
        self.instances += 1
        self.bytes += size
        if self.max_instances and self.instances > self.max_instances:
            return (
                f"the association has sent {self.instances} instances, more than the "
                f"{self.max_instances} one association may send"
            )
        if self.max_bytes and self.bytes > self.max_bytes:
            return (
                f"the association has sent {self.bytes} bytes of data sets, more than the "
                f"{self.max_bytes} one association may send"
            )
        return None


class RateLimitedLog:
    """Says a repeated refusal once per ``interval_s`` per key, with how many were not said."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._quiet: Counter[str] = Counter()

    def due(self, key: str) -> int | None:
        """None while quiet; else the number of refusals not logged since the last line."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval_s) < self.interval_s:
                self._quiet[key] += 1
                return None
            self._last[key] = now
            return self._quiet.pop(key, 0)
