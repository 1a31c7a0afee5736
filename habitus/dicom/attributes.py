"""Tolerant access to header attributes: missing, empty or malformed values read as absent."""

from __future__ import annotations

from pydicom.dataset import Dataset


def text(ds: Dataset, keyword: str) -> str:
    """A (possibly multi-valued) attribute as one string, values joined by a backslash."""
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError):
        return ""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    if isinstance(value, str):
        return value.strip()
    try:
        return "\\".join(str(v).strip() for v in value)
    except TypeError:
        return str(value).strip()


def texts(ds: Dataset, keyword: str) -> tuple[str, ...]:
    """A multi-valued string attribute as upper-case values."""
    joined = text(ds, keyword)
    return tuple(v.strip().upper() for v in joined.split("\\")) if joined else ()


def floats(ds: Dataset, keyword: str) -> tuple[float, ...] | None:
    """A numeric attribute as floats, or None when absent, empty or not numeric."""
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError):
        return None
    if value is None or (isinstance(value, str | bytes) and not value):
        return None
    items = [value] if isinstance(value, str | bytes | int | float) else list(value)
    try:
        result = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        return None
    return result or None


def number(ds: Dataset, keyword: str) -> float | None:
    values = floats(ds, keyword)
    return values[0] if values else None


def integer(ds: Dataset, keyword: str) -> int | None:
    value = number(ds, keyword)
    return int(value) if value is not None else None


def meta_text(ds: Dataset, keyword: str) -> str:
    """An attribute of the file meta header (group 0002), or "" when there is none."""
    meta = getattr(ds, "file_meta", None)
    return text(meta, keyword) if isinstance(meta, Dataset) else ""
