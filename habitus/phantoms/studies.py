"""Synthetic CT studies for tests, benchmarks and the demo: the phantoms written as DICOM.

The anatomy comes from ``habitus.phantoms.trunk`` and ``habitus.phantoms.torso``; here it
becomes CT (and PET, topogram, MIP) series of one study.

    python -m habitus.phantoms.studies OUT_DIR [--slices N] [--rows R] [--study ct|petct]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.uid import ExplicitVRLittleEndian

from habitus.phantoms.pet import TYPICAL_SUV, PetHeader, pet_image
from habitus.phantoms.slices import with_noise
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.trunk import synthetic_trunk, trunk_anatomy
from habitus.phantoms.write_dicom import CORONAL_DIRECTION, axial_geometry, write_series
from habitus.uids import derived_uid
from habitus.volume import Geometry


@dataclass(frozen=True)
class SyntheticStudy:
    """What a synthetic study holds: UIDs by series description, and the expected choice."""

    study_instance_uid: str
    expected_series_uid: str  # the series a correct chooser analyses
    series: dict[str, str] = field(default_factory=dict)  # description -> SeriesInstanceUID
    files: list[Path] = field(default_factory=list)


def write_petct_study(
    out_dir: Path,
    *,
    slices: int = 40,
    rows: int = 96,
    pixel_spacing: float = 4.0,
    slice_spacing: float = 2.0,
    seed: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
    study_uid: str | None = None,
) -> SyntheticStudy:
    """A PET-CT-like study of the synthetic trunk, centred on L3: the CT to analyse plus
    distractors a chooser must refuse.

    Series: 2 'CT Body <spacing> B30f' (expected), 3 'CT Lung <spacing> B70f' (same grid, lung
    kernel),
    4 'CT Body 5.0 B30f' (thick reconstruction), 5 'CT MIP' (DERIVED axial slabs),
    1 'Topogram' (one coronal LOCALIZER image) and 6 'PET AC' (PT in Bq/ml on a
    grid twice the CT's spacing, typical FDG uptake per tissue, complete SUV headers).
    With 120 slices of 2 mm (``habitus demo``) the scan runs from the sacrum to T11: the
    waist, L3 and both counts of the vertebrae lie inside it.
    """
    study_uid = study_uid or derived_uid("habitus-synthetic-study", str(seed), str(slices))
    frame_of_reference = derived_uid("habitus-synthetic-for", study_uid)
    shape = (slices, rows, rows)
    spacing = (slice_spacing, pixel_spacing, pixel_spacing)
    geometry = axial_geometry(shape, spacing)
    extent = (slices - 1) * slice_spacing
    z_start = geometry.z_of_slice(0)
    l3_z = z_start + extent / 2.0  # every series centred on L3, the same anatomy at each z
    anatomy, labels = trunk_anatomy(shape, spacing, z_start, l3_z)
    hu = with_noise(anatomy, seed)
    series: dict[str, str] = {}
    files: list[Path] = []
    thin = f"{slice_spacing:g}"

    def add(
        description: str,
        number: int,
        data: NDArray[np.int16],
        geo: Geometry,
        *,
        kernel: str = "B30f",
        image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
        pet: PetHeader | None = None,
    ) -> None:
        uid = derived_uid("habitus-synthetic-series", study_uid, str(number))
        files.extend(
            write_series(
                out_dir / f"s{number:02d}",
                data,
                geo,
                pet=pet,
                series_description=description,
                series_number=number,
                image_type=image_type,
                kernel=kernel,
                study_uid=study_uid,
                series_uid=uid,
                frame_of_reference_uid=frame_of_reference,
                transfer_syntax=transfer_syntax,
            )
        )
        series[description] = uid

    add(f"CT Body {thin} B30f", 2, hu, geometry, kernel="B30f")
    add(f"CT Lung {thin} B70f", 3, with_noise(anatomy, seed + 1), geometry, kernel="B70f")
    thick_slices = int(extent // 5.0) + 1
    thick_shape = (thick_slices, rows, rows)
    thick_spacing = (5.0, pixel_spacing, pixel_spacing)
    thick_hu, _ = synthetic_trunk(thick_shape, thick_spacing, seed, z_start, l3_z)
    add(
        "CT Body 5 B30f",
        4,
        thick_hu,
        axial_geometry(thick_shape, thick_spacing),
        kernel="B30f",
    )
    mip = np.maximum.reduce([np.roll(hu, shift, axis=0) for shift in (-1, 0, 1)])
    add("CT MIP", 5, mip, geometry, image_type=("DERIVED", "SECONDARY", "AXIAL", "MIP"))
    add(
        "Topogram",
        1,
        _topogram(hu, geometry),
        _topogram_geometry(geometry, shape),
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        kernel="T20f",
    )
    activity, pet_geometry = _pet_volume(labels, geometry, seed)
    add("PET AC", 6, activity, pet_geometry, pet=PetHeader())
    return SyntheticStudy(study_uid, series[f"CT Body {thin} B30f"], series, files)


def _topogram(hu: NDArray[np.int16], geometry: Geometry) -> NDArray[np.int16]:
    """A coronal projection (one image): mean attenuation through the body, head at the top."""
    projection = hu.astype(np.float32).mean(axis=1)  # (k, i)
    image = projection[::-1, :]  # rows run head to feet
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16)[np.newaxis]


def _topogram_geometry(geometry: Geometry, shape: tuple[int, int, int]) -> Geometry:
    nk, nj, _ = shape
    top = geometry.slice_position(nk - 1)
    origin = (float(top[0]), float(top[1]) + (nj - 1) / 2.0 * geometry.spacing[1], float(top[2]))
    return Geometry(
        spacing=(1.0, geometry.spacing[0], geometry.spacing[2]),
        origin=origin,
        direction=CORONAL_DIRECTION,
    )


def _pet_volume(
    labels: NDArray[np.uint8], geometry: Geometry, seed: int
) -> tuple[NDArray[np.int16], Geometry]:
    """The study's PET: typical FDG uptake per tissue in Bq/ml as the header's dose, uptake
    time and the patient's weight make it, blurred and noisy, on a grid twice the CT's."""
    values, pet_geometry = pet_image(
        labels, geometry, TYPICAL_SUV, per_unit=PetHeader().bq_ml_per_suv(), seed=seed + 7
    )
    return np.clip(np.rint(values), 0, 32767).astype(np.int16), pet_geometry


def write_ct_study(
    out_dir: Path,
    *,
    slices: int = 100,
    rows: int = 256,
    pixel_spacing: float | None = None,
    slice_spacing: float = 2.5,
    seed: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> SyntheticStudy:
    """One axial CT series of the synthetic torso (the field of view is about 400 mm)."""
    spacing_mm = pixel_spacing if pixel_spacing is not None else 400.0 / rows
    shape = (slices, rows, rows)
    spacing = (slice_spacing, spacing_mm, spacing_mm)
    hu, _ = synthetic_torso(shape, spacing, seed)
    study_uid = derived_uid("habitus-synthetic-study", "ct", str(seed), str(slices), str(rows))
    description = f"CT Body {slice_spacing:g} B30f"
    files = write_series(
        out_dir,
        hu,
        axial_geometry(shape, spacing),
        study_uid=study_uid,
        series_description=description,
        series_number=2,
        transfer_syntax=transfer_syntax,
    )
    series_uid = derived_uid("habitus-synthetic-series", study_uid, "2", description)
    return SyntheticStudy(study_uid, series_uid, {description: series_uid}, files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m habitus.phantoms.studies",
        description="Write a synthetic CT study (DICOM) of a simple torso phantom.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--slices", type=int, default=100, help="CT slices (default 100)")
    parser.add_argument("--rows", type=int, default=256, help="rows = columns (default 256)")
    parser.add_argument("--slice-spacing", type=float, default=2.5, help="mm (default 2.5)")
    parser.add_argument(
        "--study",
        choices=("ct", "petct"),
        default="ct",
        help="one CT series, or a PET-CT study with distractor series",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.study == "petct":
        study = write_petct_study(
            args.out_dir,
            slices=args.slices,
            rows=args.rows,
            pixel_spacing=400.0 / args.rows,
            slice_spacing=args.slice_spacing,
            seed=args.seed,
        )
    else:
        study = write_ct_study(
            args.out_dir,
            slices=args.slices,
            rows=args.rows,
            slice_spacing=args.slice_spacing,
            seed=args.seed,
        )
    print(  # noqa: T201  (command-line output)
        f"wrote {len(study.files)} files to {args.out_dir}; the CT to analyse is series "
        f"{study.expected_series_uid}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
