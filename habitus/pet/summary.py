"""The PET part of the command line's summary: one line on the PET, and a table of SUVs.

Pure text, so that the CLI only lays it out: per region (the torso, the waist and the L3 slice
where they were measured; the whole scan when none was) and class, SUVbw mean, max and peak.
"""

from __future__ import annotations

from dataclasses import dataclass

from habitus.pet.schema import PetSection, TissueUptake

REGION_TITLES = {"scan": "whole scan", "torso": "torso", "waist": "waist", "l3": "L3"}
TABLE_TITLE = "PET uptake per tissue, SUVbw (g/ml)"
COLUMNS = ("region", "class", "SUVmean", "SUVmax", "SUVpeak")


@dataclass(frozen=True)
class SuvTable:
    groups: list[tuple[str, list[list[str]]]]  # (region, rows of class, mean, max, peak)


def pet_line(pet: PetSection) -> str:
    """What became of the study's PET, in one line."""
    if not pet.found:
        return f"PET: {pet.reason or 'none in the study'}"
    if not pet.analysed:
        return f"PET uptake refused ({pet.refusal}): {pet.reason}"
    series = pet.chosen_series
    line = f"PET series {series.series_number} '{series.description}'" if series else "PET"
    calibration = pet.calibration
    if calibration is not None:
        line += f": {calibration.units}, decay correction {calibration.decay_correction}"
        if calibration.injected_dose_mbq is not None:
            line += f", injected {calibration.injected_dose_mbq:g} MBq"
        if calibration.weight_kg is not None:
            line += f", weight {calibration.weight_kg:g} kg ({calibration.weight_source})"
    return line


def suv_table(pet: PetSection) -> SuvTable | None:
    """SUVbw per region and class; None when the PET was not measured."""
    if not pet.analysed:
        return None
    measured = [r for r in pet.regions if r.available and r.name != "scan"]
    measured = measured or [r for r in pet.regions if r.available]
    groups = [
        (REGION_TITLES[region.name], [_row(row) for row in region.classes if row.voxels])
        for region in measured
    ]
    return SuvTable(groups) if groups else None


def _row(row: TissueUptake) -> list[str]:
    values = (row.suv_mean, row.suv_max, row.suv_peak)
    return [row.name, *("-" if v is None else f"{v:.2f}" for v in values)]
