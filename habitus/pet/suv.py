"""Standardized uptake values by the QIBA FDG-PET/CT profile's vendor-neutral calculation.

    SUVbw = A * W / D_decayed          A: voxel activity concentration (Bq/ml)
                                       W: body weight (g), D: injected dose (Bq)
    D_decayed = D * 2 ** (-(t_scan - t_inj) / T_half)    for DecayCorrection START
    D_decayed = D                                          for DecayCorrection ADMIN

``t_scan`` is the series date and time (the acquisition start the images are decay corrected
to) unless it is later than the earliest acquisition time, as for a post-processed series,
in which case the earliest acquisition time is taken. ``t_inj`` is
RadiopharmaceuticalStartDateTime, else SeriesDate with RadiopharmaceuticalStartTime (QIBA:
"start date is not explicit, assume same as series date"). With 1 g per ml of tissue the
result is in g/ml. ``Units`` CNTS are accepted only with Philips' SUV scale factor
(7053,1000), which gives SUVbw per stored count after rescaling.

SUL (SUV normalised by lean body mass) uses Janmahasatian et al., Clin Pharmacokinet 2005:
LBM = 9270 W / (6680 + 216 BMI) for men and 9270 W / (8780 + 244 BMI) for women (W in kg,
BMI in kg/m2); SUL = SUVbw * LBM / W.

Everything here is a pure function of header values; anything that does not allow an SUV by
the book raises :class:`PetRefused` with a named reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydicom.dataset import Dataset

from habitus.dicom.attributes import number, text, texts
from habitus.errors import InputRefused
from habitus.patient import WEIGHT_RANGE_KG

PHILIPS_PRIVATE_CREATOR = "Philips PET Private Group"
PHILIPS_SUV_FACTOR_ELEMENT = 0x00  # (7053,xx00): SUV scale factor, SUVbw per rescaled count
# Plausible injected activity: 1 MBq to 20 GBq. A value below is most likely written in MBq
# (the unit PS3.3 names today) rather than the Bq that scanners write and QIBA assumes.
DOSE_RANGE_BQ = (1.0e6, 2.0e10)
SUV_FORMULA = "SUVbw = A[Bq/ml] * W[g] / (D[Bq] * 2^(-(t_scan - t_inj) / T_half))"
SUV_FORMULA_ADMIN = "SUVbw = A[Bq/ml] * W[g] / D[Bq] (images decay corrected to injection)"
SUV_FORMULA_CNTS = "SUVbw = (stored * RescaleSlope + RescaleIntercept) * Philips (7053,1000)"
SUL_FORMULA = (
    "SUL = SUVbw * LBM / W; LBM = 9270 W / (6680 + 216 BMI) (men), "
    "9270 W / (8780 + 244 BMI) (women), Janmahasatian 2005"
)


class PetRefused(InputRefused):
    """The PET cannot give SUVs by the book; ``code`` names the reason for the report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SuvInputs:
    """The header values the SUV calculation reads, as found (None when absent)."""

    units: str
    corrected_image: tuple[str, ...]
    decay_correction: str
    series_time: datetime | None
    first_acquisition_time: datetime | None
    injection_time: datetime | None
    injection_time_source: str  # which attributes gave it
    total_dose_bq: float | None
    half_life_s: float | None
    radionuclide: str
    weight_kg: float | None
    weight_source: str
    philips_suv_factors: tuple[float | None, ...] = ()  # per slice, CNTS only


@dataclass(frozen=True)
class SuvScale:
    """How pixel values become SUVbw: one factor per slice (g/ml per rescaled pixel unit)."""

    per_slice: tuple[float, ...]
    formula: str
    scan_time: datetime | None = None
    decay_time_s: float | None = None
    decayed_dose_bq: float | None = None


def decayed_dose(dose_bq: float, elapsed_s: float, half_life_s: float) -> float:
    """The activity left of ``dose_bq`` after ``elapsed_s`` seconds."""
    return dose_bq * 2.0 ** (-elapsed_s / half_life_s)


def suv_bw_factor(weight_kg: float, dose_bq: float) -> float:
    """SUVbw per Bq/ml: weight in grams over the (decayed) dose in Bq."""
    return weight_kg * 1000.0 / dose_bq


def lean_body_mass_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Janmahasatian lean body mass (kg) for sex 'M' or 'F'."""
    bmi = weight_kg / (height_cm / 100.0) ** 2
    if sex == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    if sex == "F":
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    raise ValueError(f"sex must be 'M' or 'F', not {sex!r}")


def suv_scale(inputs: SuvInputs, slices: int) -> SuvScale:
    """The SUVbw factor of each slice, or PetRefused saying what the headers lack."""
    if "ATTN" not in inputs.corrected_image and "AC" not in inputs.corrected_image:
        raise PetRefused(
            "not_attenuation_corrected",
            f"CorrectedImage {_joined(inputs.corrected_image)} lacks ATTN: uptake values of a "
            "non-attenuation-corrected PET are not quantitative",
        )
    if inputs.units == "CNTS":
        return _philips_scale(inputs, slices)
    if inputs.units != "BQML":
        raise PetRefused(
            "units_unsupported",
            f"Units {inputs.units or '(missing)'}: expected BQML, or CNTS with Philips' SUV "
            "scale factor (7053,1000)",
        )
    if "DECY" not in inputs.corrected_image:
        raise PetRefused(
            "not_decay_corrected",
            f"CorrectedImage {_joined(inputs.corrected_image)} lacks DECY: the images are not "
            "decay corrected",
        )
    weight = _weight(inputs)
    dose = _dose(inputs)
    if inputs.decay_correction == "ADMIN":
        factor = suv_bw_factor(weight, dose)
        return SuvScale((factor,) * slices, SUV_FORMULA_ADMIN, None, 0.0, dose)
    if inputs.decay_correction != "START":
        raise PetRefused(
            "decay_correction_unsupported",
            f"DecayCorrection {inputs.decay_correction or '(missing)'}: expected START or ADMIN",
        )
    half_life = inputs.half_life_s
    if half_life is None or not 0 < half_life < math.inf:
        raise PetRefused(
            "half_life_missing",
            "RadionuclideHalfLife is missing or not positive in "
            "RadiopharmaceuticalInformationSequence; it is needed for decay correction",
        )
    scan = _scan_time(inputs)
    injection = inputs.injection_time
    if injection is None:
        raise PetRefused(
            "injection_time_missing",
            "no injection time: RadiopharmaceuticalStartDateTime and "
            "RadiopharmaceuticalStartTime are both missing or unreadable",
        )
    elapsed = (scan - injection).total_seconds()
    if elapsed < 0:
        raise PetRefused(
            "injection_after_acquisition",
            f"the injection ({injection.isoformat()}, from {inputs.injection_time_source}) is "
            f"after the acquisition start ({scan.isoformat()}); check the times, or the date "
            "when the injection was on the day before",
        )
    remaining = decayed_dose(dose, elapsed, half_life)
    factor = suv_bw_factor(weight, remaining)
    return SuvScale((factor,) * slices, SUV_FORMULA, scan, elapsed, remaining)


def _philips_scale(inputs: SuvInputs, slices: int) -> SuvScale:
    factors = inputs.philips_suv_factors
    if len(factors) != slices or any(f is None or not 0 < f < math.inf for f in factors):
        raise PetRefused(
            "scale_factor_missing",
            "Units CNTS without Philips' SUV scale factor (7053,1000) in every slice: counts "
            "cannot be turned into SUVs",
        )
    return SuvScale(tuple(float(f) for f in factors if f is not None), SUV_FORMULA_CNTS)


def _weight(inputs: SuvInputs) -> float:
    lo, hi = WEIGHT_RANGE_KG
    if inputs.weight_kg is None or not lo <= inputs.weight_kg <= hi:
        found = "missing" if inputs.weight_kg is None else f"{inputs.weight_kg:g} kg"
        raise PetRefused(
            "weight_missing",
            f"body weight {found} ({inputs.weight_source}); expected {lo:g}-{hi:g} kg: give "
            "--weight or weight_kg",
        )
    return inputs.weight_kg


def _dose(inputs: SuvInputs) -> float:
    dose = inputs.total_dose_bq
    if dose is None or dose <= 0:
        raise PetRefused(
            "dose_missing",
            "RadionuclideTotalDose is missing or not positive in "
            "RadiopharmaceuticalInformationSequence",
        )
    lo, hi = DOSE_RANGE_BQ
    if not lo <= dose <= hi:
        raise PetRefused(
            "dose_implausible",
            f"RadionuclideTotalDose {dose:g} is outside {lo:g}-{hi:g} Bq (1 MBq to 20 GBq); "
            "a value written in MBq is not converted by guess",
        )
    return dose


def _scan_time(inputs: SuvInputs) -> datetime:
    series, first = inputs.series_time, inputs.first_acquisition_time
    if series is not None and (first is None or series <= first):
        return series
    if first is not None:
        return first  # a post-processed series is dated after its acquisition
    raise PetRefused(
        "scan_time_missing", "SeriesDate/SeriesTime and AcquisitionDate/AcquisitionTime missing"
    )


def _joined(values: Sequence[str]) -> str:
    return "\\".join(values) or "(missing)"


# --- reading the inputs from headers ----------------------------------------------------


def suv_inputs(
    headers: Sequence[Dataset], weight_kg: float | None = None, weight_source: str = "caller"
) -> SuvInputs:
    """The SUV inputs of a PET series (headers in volume order).

    ``weight_kg`` overrides PatientWeight (the caller's value); without it the PET header's
    PatientWeight is used, as QIBA does.
    """
    first = headers[0]
    radio = _radiopharmaceutical(first)
    series_date = text(first, "SeriesDate")
    injection, injection_source = _injection_time(radio, series_date)
    if weight_kg is None:
        weight_kg = number(first, "PatientWeight") or None
        weight_source = "PET header PatientWeight"
    units = text(first, "Units").upper()
    return SuvInputs(
        units=units,
        corrected_image=texts(first, "CorrectedImage"),
        decay_correction=text(first, "DecayCorrection").upper(),
        series_time=parse_date_time(series_date, text(first, "SeriesTime")),
        first_acquisition_time=_first_acquisition(headers),
        injection_time=injection,
        injection_time_source=injection_source,
        total_dose_bq=number(radio, "RadionuclideTotalDose") if radio is not None else None,
        half_life_s=number(radio, "RadionuclideHalfLife") if radio is not None else None,
        radionuclide=_radionuclide(radio),
        weight_kg=weight_kg,
        weight_source=weight_source,
        philips_suv_factors=tuple(_philips_factor(h) for h in headers) if units == "CNTS" else (),
    )


def _radiopharmaceutical(header: Dataset) -> Dataset | None:
    try:
        items = header.get("RadiopharmaceuticalInformationSequence")
    except (TypeError, ValueError):
        return None
    return items[0] if items else None


def _injection_time(radio: Dataset | None, series_date: str) -> tuple[datetime | None, str]:
    if radio is None:
        return None, "no RadiopharmaceuticalInformationSequence"
    stamp = parse_date_time_value(text(radio, "RadiopharmaceuticalStartDateTime"))
    if stamp is not None:
        return stamp, "RadiopharmaceuticalStartDateTime"
    stamp = parse_date_time(series_date, text(radio, "RadiopharmaceuticalStartTime"))
    return stamp, "SeriesDate with RadiopharmaceuticalStartTime"


def _radionuclide(radio: Dataset | None) -> str:
    if radio is None:
        return ""
    try:
        codes = radio.get("RadionuclideCodeSequence")
        return text(codes[0], "CodeMeaning") if codes else ""
    except (TypeError, ValueError, IndexError):
        return ""


def _first_acquisition(headers: Sequence[Dataset]) -> datetime | None:
    times = [
        t
        for h in headers
        if (t := parse_date_time(text(h, "AcquisitionDate"), text(h, "AcquisitionTime")))
        is not None
    ]
    return min(times) if times else None


def _philips_factor(header: Dataset) -> float | None:
    try:
        block = header.private_block(0x7053, PHILIPS_PRIVATE_CREATOR)
        value = block[PHILIPS_SUV_FACTOR_ELEMENT].value
        return float(value[0] if isinstance(value, list | tuple) else value)
    except (KeyError, ValueError, TypeError, IndexError):
        return None


_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def parse_date_time(date: str, time: str) -> datetime | None:
    """A DA and a TM value (TM may be HH, HHMM or HHMMSS.FFFFFF) as one datetime."""
    d, t = _DATE.match(date.strip()), _TIME.match(time.strip().replace(":", ""))
    if d is None or t is None:
        return None
    hours, minutes, seconds, fraction = t.groups()
    try:
        return datetime(int(d[1]), int(d[2]), int(d[3])) + timedelta(
            hours=int(hours),
            minutes=int(minutes or 0),
            seconds=int(seconds or 0) + (float(f"0.{fraction}") if fraction else 0.0),
        )
    except ValueError:
        return None


def parse_date_time_value(value: str) -> datetime | None:
    """A DT value (YYYYMMDDHHMMSS.FFFFFF, an offset ignored: both times are the site's)."""
    value = re.split(r"[+-]", value.strip(), maxsplit=1)[0]
    if len(value) < 10:
        return None
    return parse_date_time(value[:8], value[8:])
