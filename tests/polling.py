"""Waiting in tests for something another process or thread does: poll, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout_s: float = 10.0,
    what: str = "the condition",
    interval_s: float = 0.05,
) -> T:
    """The first true value of ``condition()``; an AssertionError naming ``what`` after
    ``timeout_s`` seconds without one."""
    deadline = time.monotonic() + timeout_s
    while True:
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
