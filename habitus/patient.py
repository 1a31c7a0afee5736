"""Height, weight and sex for the indices: from the caller, else from the DICOM header.

A value that is absent or unusable leaves the field null, and ``PatientInfo.missing`` says
why in words that name where the value came from (the DICOM keyword or the option) and what
it was, so that the indices that need it can give that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

from habitus.metrics.schema import PatientInfo
from habitus.volume import CTVolume

# Plausible adult ranges; a value outside them is ignored as a data-entry error.
HEIGHT_RANGE_CM = (100.0, 230.0)
WEIGHT_RANGE_KG = (25.0, 300.0)


@dataclass(frozen=True)
class _Quantity:
    name: str  # the PatientInfo field
    what: str  # in words
    unit: str  # of the field
    keyword: str  # DICOM attribute
    header_unit: str  # unit of the DICOM attribute
    scale: float  # header value x scale = field value
    options: str  # how a caller gives it: the CLI option, the REST/job option
    plausible: tuple[float, float]


# PatientSize is in metres (PS3.3 C.7.2.2), PatientWeight in kilograms
HEIGHT = _Quantity(
    "height_cm", "height", "cm", "PatientSize", "m", 100.0, "--height or height_cm", HEIGHT_RANGE_CM
)
WEIGHT = _Quantity(
    "weight_kg",
    "weight",
    "kg",
    "PatientWeight",
    "kg",
    1.0,
    "--weight or weight_kg",
    WEIGHT_RANGE_KG,
)


def patient_info(
    volume: CTVolume,
    *,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    sex: Literal["M", "F"] | None = None,
) -> PatientInfo:
    header: Any = volume.source.headers[0] if volume.source and volume.source.headers else None
    info = PatientInfo()
    for q, given in ((HEIGHT, height_cm), (WEIGHT, weight_kg)):
        found = _measure(q, given, header)
        if isinstance(found, _Unusable):
            info.missing[q.name] = f"{q.what} unknown: {found.problem}; {found.remedy}"
            if found.warn:
                info.warnings.append(f"{found.problem} and was ignored; {found.remedy}")
            continue
        value, origin = found
        setattr(info, q.name, value)
        info.source[q.name] = origin
    if sex is not None:
        info.sex, info.source["sex"] = sex, "caller"
    elif header is not None and str(getattr(header, "PatientSex", "")).upper() in ("M", "F"):
        info.sex = cast(Literal["M", "F"], str(header.PatientSex).upper())
        info.source["sex"] = "dicom PatientSex"
    return info


class _Unusable(NamedTuple):
    problem: str  # what was (not) found, naming the keyword or option and the value
    remedy: str
    warn: bool  # a value was there but wrong (a data-entry error), not merely absent


def _measure(q: _Quantity, given: float | None, header: Any) -> tuple[float, str] | _Unusable:
    """(value, origin): the caller's value, else the header's (scaled); else why neither."""
    lo, hi = q.plausible
    plausible = f"the plausible {lo:g}–{hi:g} {q.unit}"
    give = f"give the {q.what} in {q.unit} ({q.options})"
    if given is not None:
        if lo <= given <= hi:
            return given, "caller"
        given_as = f"the {q.what} given as {given:g} ({q.options}, in {q.unit})"
        return _Unusable(f"{given_as} is outside {plausible}", f"give it in {q.unit}", True)
    if header is None:
        return _Unusable(f"a NIfTI volume has no {q.keyword}", give, False)
    raw = _text(header, q.keyword)
    if not raw:
        return _Unusable(f"{q.keyword} is not in the DICOM header", give, False)
    try:
        number = float(raw)
    except ValueError:
        return _Unusable(f"{q.keyword} {raw!r} is not a number", f"{give} or correct it", True)
    if number == 0:  # some systems write 0 for "not known"
        return _Unusable(f"{q.keyword} is 0 in the DICOM header", give, False)
    value = round(number * q.scale, 1)
    read_as = f" read as {value:g} {q.unit}" if q.scale != 1 else ""
    if not lo <= value <= hi:
        problem = f"{q.keyword} {raw} ({q.header_unit}){read_as} is outside {plausible}"
        return _Unusable(problem, f"{give} or correct the header", True)
    return value, f"dicom {q.keyword}"


def _text(header: Any, keyword: str) -> str:
    """The attribute as written (a DS keeps its original string), "" when absent or empty."""
    try:
        value = getattr(header, keyword, None)
        return "" if value is None else str(value).strip()
    except (TypeError, ValueError):  # a value pydicom refuses to convert
        raw = getattr(header.get_item(keyword), "value", b"")
        return raw.decode("ascii", "replace").strip() if isinstance(raw, bytes) else ""
