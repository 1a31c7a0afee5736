"""Check from headers alone that the slices of a series form a regular volume, and plan it.

Slices are sorted by their position along the slice normal (ImagePositionPatient dotted with
the cross product of the ImageOrientationPatient cosines). The slice interval comes from those
positions, never from SliceThickness, which is the reconstruction thickness and may differ
(3 mm slices every 2 mm). Problems are collected, not raised, so the series chooser can list
them in its verdicts and the volume builder can refuse with all of them at once.

Gantry tilt is refused, not resampled: resampling would move every voxel off the source
slices that DICOM-SEG frames and SR references point at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from habitus.dicom.attributes import floats, integer, number
from habitus.volume import Geometry

ORIENTATION_TOLERANCE = 1e-3  # max difference of direction cosines within one series
PIXEL_SPACING_TOLERANCE_MM = 1e-3
DUPLICATE_TOLERANCE_MM = 0.01
MAX_LISTED = 5  # examples listed in one message


@dataclass(frozen=True)
class StackPlan:
    """How the slices of a series stack into a volume, and what is wrong with them."""

    order: list[int]  # indices into the given headers, in volume order (ascending along normal)
    geometry: Geometry | None  # None when the problems leave no geometry to speak of
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.geometry is not None

    @property
    def slice_interval_mm(self) -> float | None:
        return self.geometry.spacing[0] if self.geometry is not None else None


def plan_stack(
    headers: list[Dataset],
    names: list[str],
    *,
    spacing_tolerance: float = 0.05,
    max_tilt_deg: float = 0.5,
) -> StackPlan:
    """Sort the slices, derive the Geometry and list every problem that prevents a volume."""
    problems = _missing_attributes(headers, names)
    if problems:
        return StackPlan(list(range(len(headers))), None, problems)
    problems += _inconsistent_size(headers, names)
    problems += _inconsistent_orientation(headers, names)
    problems += _inconsistent_pixel_spacing(headers, names)
    if problems:
        return StackPlan(list(range(len(headers))), None, problems)

    orientation = np.asarray(floats(headers[0], "ImageOrientationPatient"), dtype=np.float64)
    row_dir = _unit(orientation[:3])
    col_dir = _unit(orientation[3:6])
    normal = _unit(np.cross(row_dir, col_dir))
    positions = np.asarray([floats(h, "ImagePositionPatient") for h in headers], dtype=np.float64)
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    sorted_positions = positions[order]
    sorted_along = along[order]
    sorted_names = [names[i] for i in order]

    # A single slice has no interval: take the spacing or thickness it states.
    interval = (
        number(headers[0], "SpacingBetweenSlices") or number(headers[0], "SliceThickness") or 1.0
    )
    if len(headers) > 1:
        steps = np.diff(sorted_along)
        problems += _duplicates(steps, sorted_positions, sorted_names)
        moving = steps[steps >= DUPLICATE_TOLERANCE_MM]
        if moving.size:
            interval = float(np.median(moving))
            problems += _irregular_steps(
                steps, interval, spacing_tolerance, sorted_positions, sorted_names
            )
            problems += _tilt(sorted_positions, normal, max_tilt_deg, headers[0])
        if not problems:
            mean_step = (sorted_along[-1] - sorted_along[0]) / (len(headers) - 1)
            interval = round(float(mean_step), 6)  # drop float noise of DS positions
    pixel_spacing = floats(headers[0], "PixelSpacing") or (1.0, 1.0)
    direction = np.column_stack([normal, col_dir, row_dir])
    geometry = Geometry(
        spacing=(interval, float(pixel_spacing[0]), float(pixel_spacing[1])),
        origin=(
            float(sorted_positions[0][0]),
            float(sorted_positions[0][1]),
            float(sorted_positions[0][2]),
        ),
        direction=tuple((float(r[0]), float(r[1]), float(r[2])) for r in direction),
    )
    return StackPlan(order, geometry, problems)


def axial_deviation_deg(header: Dataset) -> float | None:
    """Angle between the slice normal and the patient's craniocaudal axis, in degrees."""
    orientation = floats(header, "ImageOrientationPatient")
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(_unit(np.asarray(orientation[:3])), _unit(np.asarray(orientation[3:])))
    cosine = min(abs(float(normal[2])) / max(float(np.linalg.norm(normal)), 1e-12), 1.0)
    return math.degrees(math.acos(cosine))


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _short(name: str) -> str:
    """A file name without its folders, enough to find it in a listing."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _z(position: NDArray[np.float64]) -> str:
    return f"z={position[2]:.2f} mm"


def _missing_attributes(headers: list[Dataset], names: list[str]) -> list[str]:
    problems = []
    for keyword, length in (
        ("ImagePositionPatient", 3),
        ("ImageOrientationPatient", 6),
        ("PixelSpacing", 2),
    ):
        lacking = [
            _short(n)
            for h, n in zip(headers, names, strict=True)
            if len(floats(h, keyword) or ()) != length
        ]
        if lacking:
            problems.append(
                f"{len(lacking)} instance(s) lack a valid {keyword} ({length} numbers "
                f"expected): {_listed(lacking)}"
            )
    lacking_size = [
        _short(n)
        for h, n in zip(headers, names, strict=True)
        if not integer(h, "Rows") or not integer(h, "Columns")
    ]
    if lacking_size:
        problems.append(
            f"{len(lacking_size)} instance(s) lack Rows/Columns: {_listed(lacking_size)}"
        )
    return problems


def _inconsistent_size(headers: list[Dataset], names: list[str]) -> list[str]:
    sizes: dict[tuple[int | None, int | None], list[str]] = {}
    for h, n in zip(headers, names, strict=True):
        sizes.setdefault((integer(h, "Rows"), integer(h, "Columns")), []).append(_short(n))
    if len(sizes) <= 1:
        return []
    described = [f"{r}x{c} in {len(ns)} ({_listed(ns)})" for (r, c), ns in sizes.items()]
    return [f"inconsistent image size (rows x columns) within the series: {'; '.join(described)}"]


def _inconsistent_orientation(headers: list[Dataset], names: list[str]) -> list[str]:
    reference, differing = _differing(
        headers, names, "ImageOrientationPatient", ORIENTATION_TOLERANCE
    )
    if not differing:
        return []
    return [
        f"mixed orientations within the series: {len(differing)} of {len(headers)} slices "
        f"differ from ImageOrientationPatient {list(np.round(reference, 4))} of "
        f"{_short(names[0])}: {_listed(differing)}"
    ]


def _inconsistent_pixel_spacing(headers: list[Dataset], names: list[str]) -> list[str]:
    reference, differing = _differing(headers, names, "PixelSpacing", PIXEL_SPACING_TOLERANCE_MM)
    if not differing:
        return []
    return [
        f"inconsistent PixelSpacing within the series: {list(np.round(reference, 4))} in "
        f"{_short(names[0])}, but {_listed(differing)}"
    ]


def _differing(
    headers: list[Dataset], names: list[str], keyword: str, tolerance: float
) -> tuple[NDArray[np.float64], list[str]]:
    """The first slice's value of ``keyword``, and "name [value]" of each slice whose value
    differs from it by more than ``tolerance`` in any component."""
    reference = np.asarray(floats(headers[0], keyword))
    differing = [
        f"{_short(n)} {list(np.round(v, 4))}"
        for h, n in zip(headers, names, strict=True)
        if np.max(np.abs((v := np.asarray(floats(h, keyword))) - reference)) > tolerance
    ]
    return reference, differing


def _duplicates(
    steps: NDArray[np.float64], positions: NDArray[np.float64], names: list[str]
) -> list[str]:
    clusters: list[list[int]] = []
    for index in np.flatnonzero(steps < DUPLICATE_TOLERANCE_MM):
        k = int(index)
        if clusters and clusters[-1][-1] == k:
            clusters[-1].append(k + 1)
        else:
            clusters.append([k, k + 1])
    if not clusters:
        return []
    described = [
        f"{_z(positions[c[0]])} ({', '.join(_short(names[i]) for i in c)})" for c in clusters
    ]
    count = sum(len(c) for c in clusters)
    return [
        f"duplicate slice positions: {count} slices share {len(clusters)} position(s): "
        f"{_listed(described)}"
    ]


def _irregular_steps(
    steps: NDArray[np.float64],
    interval: float,
    tolerance: float,
    positions: NDArray[np.float64],
    names: list[str],
) -> list[str]:
    gaps: list[str] = []
    uneven: list[str] = []
    for k, step in enumerate(steps):
        step = float(step)
        if step < DUPLICATE_TOLERANCE_MM or abs(step - interval) <= tolerance * interval:
            continue
        between = (
            f"{step:.2f} mm between {_z(positions[k])} ({_short(names[k])}) and "
            f"{_z(positions[k + 1])} ({_short(names[k + 1])})"
        )
        missing = round(step / interval) - 1
        if missing >= 1 and abs(step - (missing + 1) * interval) <= tolerance * interval:
            gaps.append(f"{between}, about {missing} slice(s) missing")
        elif step > 1.5 * interval:
            gaps.append(between)
        else:
            uneven.append(between)
    problems = []
    if gaps:
        problems.append(
            f"missing slices: gaps where the usual slice interval is {interval:.2f} mm: "
            f"{_listed(gaps)}"
        )
    if uneven:
        problems.append(
            f"non-uniform slice spacing: intervals differ from {interval:.2f} mm by more than "
            f"{tolerance:.0%}: {_listed(uneven)}"
        )
    return problems


def _tilt(
    positions: NDArray[np.float64],
    normal: NDArray[np.float64],
    max_tilt_deg: float,
    header: Dataset,
) -> list[str]:
    """Slices that advance obliquely to their normal: the signature of gantry tilt."""
    travel = positions - positions[0]
    along = travel @ normal
    sideways = travel - np.outer(along, normal)
    length = float(abs(along[-1] - along[0]))
    if length <= 0:
        return []
    drift = float(np.linalg.norm(sideways[-1] - sideways[0]))
    angle = math.degrees(math.atan2(drift, length))
    if angle <= max_tilt_deg:
        return []
    stated = number(header, "GantryDetectorTilt")
    stated_text = f" (GantryDetectorTilt {stated:g} degrees)" if stated else ""
    return [
        f"gantry tilt: slice positions drift {drift:.1f} mm sideways over {length:.1f} mm, a "
        f"tilt of {angle:.1f} degrees{stated_text}, more than the {max_tilt_deg:g} degrees "
        "allowed; tilted series are refused, not resampled: reconstruct or resample the "
        "series without tilt first"
    ]
