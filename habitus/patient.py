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

    if height_cm is not None:
        source["height_cm"] = "caller"
    elif header is not None and _number(header, "PatientSize"):
        # PatientSize is in metres (PS3.3 C.7.2.2)
        height_cm = round(_number(header, "PatientSize") * 100.0, 1)  # type: ignore[operator]
        source["height_cm"] = "dicom PatientSize"
    if height_cm is not None and not HEIGHT_RANGE_CM[0] <= height_cm <= HEIGHT_RANGE_CM[1]:
        warnings.append(f"height {height_cm} cm is outside {HEIGHT_RANGE_CM} cm and was ignored")
        height_cm = None
        source.pop("height_cm", None)

    if weight_kg is not None:
        source["weight_kg"] = "caller"
    elif header is not None and _number(header, "PatientWeight"):
        weight_kg = _number(header, "PatientWeight")
        source["weight_kg"] = "dicom PatientWeight"
    if weight_kg is not None and not WEIGHT_RANGE_KG[0] <= weight_kg <= WEIGHT_RANGE_KG[1]:
        warnings.append(f"weight {weight_kg} kg is outside {WEIGHT_RANGE_KG} kg and was ignored")
        weight_kg = None
        source.pop("weight_kg", None)

    if sex is not None:
        source["sex"] = "caller"
    elif header is not None and str(getattr(header, "PatientSex", "")).upper() in ("M", "F"):
        sex = cast(Literal["M", "F"], str(header.PatientSex).upper())
        source["sex"] = "dicom PatientSex"

    return PatientInfo(
        height_cm=height_cm, weight_kg=weight_kg, sex=sex, source=source, warnings=warnings
    )


def _number(header: Any, keyword: str) -> float | None:
    try:
        value = float(getattr(header, keyword, None) or 0.0)
    except (TypeError, ValueError):
        return None
    return value or None
