"""Lists of a job record (warnings, delivered instances) merged as the record grows."""

from __future__ import annotations

from collections.abc import Iterable


def merged(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """``first``, then the items of ``second`` not in it: each item once, in order."""
    return list(dict.fromkeys([*first, *second]))
