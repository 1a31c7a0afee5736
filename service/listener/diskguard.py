"""The spool's disk watermark: an instance is refused (0xA700) before it is written, never
removed after it was acknowledged.

Two bounds, either or both: the bytes the spool holds (HABITUS_LISTENER_SPOOL_MAX_BYTES) and
the free space left on its file system (HABITUS_LISTENER_SPOOL_MIN_FREE_BYTES). The spool's
size is measured by walking it at most every ``rescan_s`` seconds; between walks each write
is added and nothing removed is subtracted, so the estimate only errs on the full side.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class SpoolGuard:
    def __init__(
        self, root: Path, max_bytes: int, min_free_bytes: int, rescan_s: float = 5.0
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.rescan_s = rescan_s
        self._lock = threading.Lock()
        self._used = 0
        self._scanned_at = -float("inf")

    def refusal(self, size: int) -> str | None:
        """Why an instance of ``size`` bytes may not be written now, or None if it may."""
        if self.min_free_bytes:
            stats = os.statvfs(self.root)
            free = stats.f_bavail * stats.f_frsize
            if free - size < self.min_free_bytes:
                return (
                    f"the spool's file system has {free} bytes free; {size} more would leave "
                    f"less than the {self.min_free_bytes} to keep free"
                )
        if self.max_bytes:
            used = self.used()
            if used + size > self.max_bytes:
                return (
                    f"the spool holds {used} bytes; {size} more would pass its maximum "
                    f"of {self.max_bytes}"
                )
        return None

    def added(self, size: int) -> None:
        """An instance of ``size`` bytes was written."""
        with self._lock:
            self._used += size

    def used(self) -> int:
        """Bytes the spool holds (walked again when the last walk is older than rescan_s)."""
        with self._lock:
            now = time.monotonic()
            if now - self._scanned_at >= self.rescan_s:
                self._used = _size_of(self.root)
                self._scanned_at = now
            return self._used


def _size_of(root: Path) -> int:
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:  # removed meanwhile (a batch submitted)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total
