"""Height, weight and sex for the indices: from the caller, else from the DICOM header."""

from __future__ import annotations

from typing import Any, Literal, cast

from habitus.metrics.schema import PatientInfo
from habitus.volume import CTVolume

# Plausible adult ranges; a header value outside them is ignored as a data-entry error.
HEIGHT_RANGE_CM = (100.0, 230.0)
WEIGHT_RANGE_KG = (25.0, 300.0)


def patient_info(
    volume: CTVolume,
    *,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    sex: Literal["M", "F"] | None = None,
) -> PatientInfo:
    header: Any = volume.source.headers[0] if volume.source and volume.source.headers else None
    source: dict[str, str] = {}
    warnings: list[str] = []
    # PatientSize is in metres (PS3.3 C.7.2.2), PatientWeight in kilograms
    height_cm = _measure(
        "height_cm", height_cm, header, "PatientSize", 100.0, HEIGHT_RANGE_CM, source, warnings
    )
    weight_kg = _measure(
        "weight_kg", weight_kg, header, "PatientWeight", 1.0, WEIGHT_RANGE_KG, source, warnings
    )
    if sex is not None:
        source["sex"] = "caller"
    elif header is not None and str(getattr(header, "PatientSex", "")).upper() in ("M", "F"):
        sex = cast(Literal["M", "F"], str(header.PatientSex).upper())
        source["sex"] = "dicom PatientSex"
    return PatientInfo(
        height_cm=height_cm, weight_kg=weight_kg, sex=sex, source=source, warnings=warnings
    )


def _measure(
    name: str,
    given: float | None,
    header: Any,
    keyword: str,
    scale: float,
    plausible: tuple[float, float],
    source: dict[str, str],
    warnings: list[str],
) -> float | None:
    """The caller's value, else the header's (scaled); an implausible value is dropped."""
    value, origin = given, "caller"
    if value is None and header is not None:
        raw = _number(header, keyword)
        value, origin = (None if raw is None else round(raw * scale, 1)), f"dicom {keyword}"
    if value is None:
        return None
    if not plausible[0] <= value <= plausible[1]:
        warnings.append(f"{name} {value} is outside {plausible} and was ignored")
        return None
    source[name] = origin
    return value


def _number(header: Any, keyword: str) -> float | None:
    try:
        value = float(getattr(header, keyword, None) or 0.0)
    except (TypeError, ValueError):
        return None
    return value or None
