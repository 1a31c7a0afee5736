"""analyze_pet: the PET part of an analysis, from the study's files to ``Report.pet``.

It never fails the analysis: a study without PET, or a PET whose headers do not allow an SUV
by the book, gives a section that says so (with the reason), and the CT results stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from habitus.dicom.choose import SeriesVerdict
from habitus.dicom.group import group_series
from habitus.dicom.read import scan_headers
from habitus.dicom.sources import close_sources, collect_sources
from habitus.metrics.schema import PatientInfo, Regions, SliceRange
from habitus.pet.decode import PetVolume, load_pet
from habitus.pet.find import PetChoice, find_pet
from habitus.pet.sample import SuvImage
from habitus.pet.schema import (
    LiverReference,
    PetSection,
    RegionName,
    RegionUptake,
    SuvCalibration,
    TissueMethod,
    TissueUptake,
)
from habitus.pet.suv import (
    SUL_FORMULA,
    PetRefused,
    SuvInputs,
    SuvScale,
    lean_body_mass_kg,
    suv_inputs,
    suv_scale,
)
from habitus.pet.tissue import (
    DEFAULT_EROSION_MM,
    DEFAULT_MIN_FRACTION,
    PetGrid,
    labels_on_pet_grid,
    peak_map,
    tissue_uptake,
)
from habitus.volume import CTVolume

LIVER_UNAVAILABLE = (
    "the segmentation labels the abdominal organs as one class (internal organs and vessels) "
    "and does not delineate the liver, so the PERCIST liver reference (SUVmean in a 3 cm "
    "sphere of the right lobe) is left out rather than guessed"
)


@dataclass
class PetAnalysis:
    section: PetSection
    headers: list[Dataset] = field(default_factory=list)  # the measured PET, slice k at k
    suv: SuvImage | None = None  # the measured PET in SUVbw, for the preview


def analyze_pet(
    source: Path | Sequence[Path],
    ct: CTVolume,
    labels: NDArray[np.uint8],
    other_series: Sequence[SeriesVerdict],
    patient: PatientInfo,
    regions: Regions | None,
) -> PetAnalysis:
    """Find the study's PET and measure uptake per tissue on it."""
    if ct.source is None:
        why = "NIfTI input: no PET to look for"
        return PetAnalysis(PetSection(found=False, analysed=False, reason=why))
    if not any(v.modality.upper() == "PT" for v in other_series):
        why = "no PET series in the study"
        return PetAnalysis(PetSection(found=False, analysed=False, reason=why))
    choice = _find(source, ct)
    if choice.group is None or choice.plan is None or choice.chosen is None:
        none = PetSection(
            found=False,
            analysed=False,
            reason="no PET series qualifies: "
            + "; ".join(f"series {v.series_number}: {', '.join(v.reasons)}" for v in choice.others),
            other_series=choice.others,
        )
        return PetAnalysis(none)
    section = PetSection(
        found=True, analysed=False, chosen_series=choice.chosen, other_series=choice.others
    )
    if not choice.chosen.same_frame_of_reference:
        section.warnings.append(
            f"the PET (series {choice.chosen.series_number}) is in another frame of reference "
            "than the CT: its uptake per tissue assumes both share patient coordinates"
        )
    try:
        pet = load_pet(choice.group, choice.plan)
        inputs = _inputs(pet, patient)
        scale = suv_scale(inputs, pet.values.shape[0])
        section.calibration = _calibration(inputs, scale, patient)
        per_slice = np.asarray(scale.per_slice, dtype=np.float32)
        suv = pet.values * per_slice[:, np.newaxis, np.newaxis]
        _measure(section, suv, pet, ct, labels, regions)
    except PetRefused as refused:
        section.refusal, section.reason, section.regions = refused.code, str(refused), []
        return PetAnalysis(section)
    section.analysed = True
    return PetAnalysis(section, pet.headers, SuvImage(suv, pet.geometry, choice.chosen.description))


def _find(source: Path | Sequence[Path], ct: CTVolume) -> PetChoice:
    """Read the headers again (the CT loader keeps none of the other series) and choose."""
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    sources = collect_sources(paths)
    try:
        scan = scan_headers(sources)
        return find_pet(group_series(scan.instances).series, ct)
    finally:
        close_sources(sources)


def _inputs(pet: PetVolume, patient: PatientInfo) -> SuvInputs:
    """The SUV inputs: the caller's weight, else the PET's PatientWeight, else the CT's."""
    if patient.source.get("weight_kg") == "caller":
        return suv_inputs(pet.headers, patient.weight_kg, "caller")
    inputs = suv_inputs(pet.headers)
    if inputs.weight_kg is None and patient.weight_kg is not None:
        source = f"CT header ({patient.source.get('weight_kg', 'dicom PatientWeight')})"
        return suv_inputs(pet.headers, patient.weight_kg, source)
    return inputs


def _calibration(inputs: SuvInputs, scale: SuvScale, patient: PatientInfo) -> SuvCalibration:
    calibration = SuvCalibration(
        units=inputs.units,
        decay_correction=inputs.decay_correction,
        formula=scale.formula,
        radionuclide=inputs.radionuclide,
        injected_dose_mbq=_mbq(inputs.total_dose_bq),
        half_life_s=inputs.half_life_s,
        injection_time=inputs.injection_time.isoformat() if inputs.injection_time else None,
        injection_time_source=inputs.injection_time_source,
        scan_time=scale.scan_time.isoformat() if scale.scan_time else None,
        decay_time_s=scale.decay_time_s,
        decayed_dose_mbq=_mbq(scale.decayed_dose_bq),
        weight_kg=inputs.weight_kg,
        weight_source=inputs.weight_source,
    )
    missing = [
        what
        for what, value in (
            ("height", patient.height_cm),
            ("sex", patient.sex),
            ("weight", inputs.weight_kg),
        )
        if value is None
    ]
    if missing:
        calibration.missing["lean_body_mass_kg"] = f"unknown {', '.join(missing)}"
    else:
        assert inputs.weight_kg and patient.height_cm and patient.sex
        lbm = lean_body_mass_kg(inputs.weight_kg, patient.height_cm, patient.sex)
        calibration.lean_body_mass_kg = round(lbm, 2)
        calibration.sul_formula = SUL_FORMULA
    return calibration


def _measure(
    section: PetSection,
    suv: NDArray[np.float32],
    pet: PetVolume,
    ct: CTVolume,
    labels: NDArray[np.uint8],
    regions: Regions | None,
) -> None:
    grid = PetGrid((suv.shape[0], suv.shape[1], suv.shape[2]), pet.geometry)
    classes = labels_on_pet_grid(labels, ct.geometry, grid)
    peaks = peak_map(suv, pet.geometry.spacing)
    section.method = TissueMethod(erosion_mm=DEFAULT_EROSION_MM, min_fraction=DEFAULT_MIN_FRACTION)
    z = np.asarray([pet.geometry.z_of_slice(k) for k in range(suv.shape[0])])
    calibration = section.calibration
    sul_per_suv = (
        calibration.lean_body_mass_kg / calibration.weight_kg
        if calibration and calibration.lean_body_mass_kg and calibration.weight_kg
        else None
    )
    for name, chosen, reason in _region_slices(z, ct, regions, pet.geometry.spacing[0]):
        if chosen is None:
            section.regions.append(RegionUptake(name=name, available=False, reason=reason))
            continue
        within = np.zeros(suv.shape, dtype=bool)
        within[chosen] = True
        rows = tissue_uptake(suv, peaks, classes, within, grid.voxel_ml)
        _add_sul(rows, sul_per_suv)
        span = (round(float(z[chosen].min()), 2), round(float(z[chosen].max()), 2))
        section.regions.append(
            RegionUptake(
                name=name,
                available=True,
                z_mm=span,
                pet_slices=(int(chosen.min()), int(chosen.max())),
                classes=rows,
            )
        )
    section.liver_reference = LiverReference(available=False, reason=LIVER_UNAVAILABLE)


def _add_sul(rows: list[TissueUptake], sul_per_suv: float | None) -> None:
    if sul_per_suv is None:
        return
    for row in rows:
        if row.suv_mean is not None:
            row.sul_mean = round(row.suv_mean * sul_per_suv, 3)


def _region_slices(
    z: NDArray[np.float64], ct: CTVolume, regions: Regions | None, pet_interval: float
) -> list[tuple[RegionName, NDArray[np.intp] | None, str | None]]:
    """The PET slices of each region: those whose centre lies within the region's CT slices,
    and for L3 the one PET slice nearest the L3 slice."""
    half = ct.geometry.spacing[0] / 2.0
    scan = _within(z, ct.geometry.z_of_slice(0), ct.geometry.z_of_slice(ct.shape[0] - 1), half)
    out: list[tuple[RegionName, NDArray[np.intp] | None, str | None]] = [("scan", scan, None)]
    if regions is None:
        why = "no body-composition regions (landmarks were not searched)"
        return [*out, ("torso", None, why), ("waist", None, why), ("l3", None, why)]
    spans: tuple[tuple[RegionName, SliceRange | None], ...] = (
        ("torso", regions.torso),
        ("waist", regions.waist),
    )
    for name, span in spans:
        if span is None:
            out.append((name, None, f"the {name} was not found in the CT"))
        else:
            out.append((name, _within(z, span.z_mm[0], span.z_mm[1], half), None))
    if regions.l3_slice is None:
        out.append(("l3", None, "the L3 slice was not found in the CT"))
    else:
        l3_z = ct.geometry.z_of_slice(regions.l3_slice)
        nearest = int(np.argmin(np.abs(z - l3_z)))
        if abs(z[nearest] - l3_z) <= pet_interval / 2.0 + 1e-6:
            out.append(("l3", np.asarray([nearest], dtype=np.intp), None))
        else:
            out.append(("l3", None, "the PET does not cover the L3 slice"))
    return out


def _within(z: NDArray[np.float64], a: float, b: float, margin: float) -> NDArray[np.intp] | None:
    lo, hi = min(a, b) - margin, max(a, b) + margin
    chosen = np.flatnonzero((z >= lo) & (z <= hi))
    return chosen if chosen.size else None


def _mbq(value: float | None) -> float | None:
    return None if value is None else round(value / 1.0e6, 3)
