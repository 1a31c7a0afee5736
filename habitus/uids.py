"""Deterministic UIDs for derived objects (DESIGN.md §3).

A retried job must write the same SEG and SR, so their UIDs are a pure function of the
source series, the model and the pipeline version. UIDs use the 2.25 root (ISO/IEC 9834-8),
under which a decimal integer derived from a 128-bit hash is a valid UID.
"""

import hashlib


def derived_uid(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))
