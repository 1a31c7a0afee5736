"""Labelled volumes for training: reading pairs from disk and putting them on the model grid.

A labelled volume is HU plus a label map (habitus.labels.Tissue values) on the same grid. The
network is trained in the canonical orientation of an axial DICOM series as habitus reads it:
slice index towards the head (+z), row index towards the back (+y), column index towards the
patient's left (+x). Volumes whose axes run the other way are flipped into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from habitus.errors import InputRefused
from habitus.labels import NUM_LABELS
from habitus.segment.orientation import canonical_flips, flip_axes
from habitus.segment.resample import axis_weights, grid_mapping, resample_to_model
from habitus.volume import Geometry

A = TypeVar("A", bound=NDArray[Any])

IGNORE = 255
"""Label value of voxels that do not count in the loss (padding, unlabelled)."""


@dataclass(frozen=True)
class LabelledVolume:
    hu: NDArray[np.int16]  # (k, j, i)
    labels: NDArray[np.uint8]  # same shape; Tissue values or IGNORE
    spacing: tuple[float, float, float]
    name: str = ""


def to_model_grid(
    volume: LabelledVolume, target_spacing: tuple[float, float, float]
) -> LabelledVolume:
    """HU resampled as the engine does (anti-aliased linear); labels by nearest voxel centre."""
    mapping = grid_mapping(volume.hu.shape, volume.spacing, target_spacing)
    if mapping.is_identity:
        return volume
    hu = resample_to_model(volume.hu, mapping)
    index = []
    for n_out, n_in in zip(mapping.model_shape, mapping.native_shape, strict=True):
        w = axis_weights(n_out, n_in)
        index.append(np.where(w.w < 0.5, w.lo, w.hi))
    labels = volume.labels[np.ix_(index[0], index[1], index[2])]
    return LabelledVolume(
        hu=np.clip(np.rint(hu), -32768, 32767).astype(np.int16),
        labels=np.ascontiguousarray(labels),
        spacing=mapping.model_spacing,
        name=volume.name,
    )


def _check_labels(labels: NDArray[np.generic], where: str) -> NDArray[np.uint8]:
    values = np.unique(labels)
    bad = [int(v) for v in values if not (0 <= v < NUM_LABELS or v == IGNORE)]
    if bad:
        raise InputRefused(
            f"{where}: expected label values 0-{NUM_LABELS - 1} (habitus.labels.Tissue) or "
            f"{IGNORE} (unlabelled), found {bad[:10]}"
        )
    return labels.astype(np.uint8)


def read_nifti_pair(ct_path: Path, labels_path: Path) -> LabelledVolume:
    """A CT NIfTI and its label NIfTI on the same grid, in canonical orientation."""
    from habitus.dicom.nifti import read_nifti_kji

    hu, geometry, _ = read_nifti_kji(ct_path)
    labels, label_geometry, _ = read_nifti_kji(labels_path)
    if hu.shape != labels.shape:
        raise InputRefused(
            f"{labels_path}: expected a label map of the CT's shape {hu.shape}, found "
            f"{labels.shape}"
        )
    flips = canonical_flips(geometry)
    return LabelledVolume(
        hu=flip_axes(np.clip(np.rint(hu), -32768, 32767).astype(np.int16), flips),
        labels=flip_axes(_check_labels(np.rint(labels), str(labels_path)), flips),
        spacing=geometry.spacing,
        name=ct_path.parent.name if ct_path.name.startswith("ct.") else ct_path.name,
    )


def read_dicom_with_seg(series_dir: Path, seg_path: Path) -> LabelledVolume:
    """A DICOM CT series and a DICOM-SEG whose segment numbers are Tissue values."""
    import highdicom as hd

    from habitus.dicom import load_ct
    from habitus.dicom.series_rules import SeriesRules

    # Annotated series may be short or thick; the regular-volume checks still apply.
    rules = SeriesRules(min_slices=1, max_slice_thickness_mm=20.0)
    loaded = load_ct(series_dir, rules=rules)
    volume = loaded.volume
    if volume.source is None:
        raise InputRefused(f"{series_dir}: expected a DICOM series, found {loaded.format}")
    seg = hd.seg.segread(str(seg_path))
    labels = np.zeros(volume.shape, dtype=np.uint8)
    uids = [(volume.source.series_instance_uid, h.SOPInstanceUID) for h in volume.source.headers]
    segment_numbers = [int(n) for n in seg.segment_numbers]
    bad = [n for n in segment_numbers if not 0 < n < NUM_LABELS]
    if bad:
        raise InputRefused(
            f"{seg_path}: expected segment numbers 1-{NUM_LABELS - 1} (habitus.labels.Tissue), "
            f"found {bad}"
        )
    sop_uids = [u[1] for u in uids]
    masks = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=sop_uids,
        segment_numbers=segment_numbers,
        ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )
    for position, number in enumerate(segment_numbers):
        labels[masks[..., position] > 0] = number
    flips = canonical_flips(volume.geometry)
    return LabelledVolume(
        hu=flip_axes(volume.hu, flips),
        labels=flip_axes(labels, flips),
        spacing=volume.geometry.spacing,
        name=series_dir.name,
    )


def write_nifti_pair(
    hu: NDArray[np.int16], labels: NDArray[np.uint8], geometry: Geometry, folder: Path
) -> tuple[Path, Path]:
    """Save ``ct.nii.gz`` and ``labels.nii.gz`` (a case of a labelled folder)."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    # NIfTI is RAS and indexed (i, j, k): transpose our (k, j, i) and negate x and y.
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ geometry.affine[:, [2, 1, 0, 3]]
    paths = (folder / "ct.nii.gz", folder / "labels.nii.gz")
    arrays: list[NDArray[Any]] = [hu, labels]
    for path, data in zip(paths, arrays, strict=True):
        nib.save(nib.Nifti1Image(np.transpose(data, (2, 1, 0)), affine), str(path))
    return paths


def read_labelled_folder(root: Path) -> list[LabelledVolume]:
    """Every case under ``root``: one folder per case holding either

    * ``ct.nii.gz`` and ``labels.nii.gz`` (NIfTI pair on the same grid), or
    * ``ct/`` (the DICOM series) and ``seg.dcm`` (DICOM-SEG, segment number = Tissue value).
    """
    cases = sorted(p for p in Path(root).iterdir() if p.is_dir())
    volumes = []
    for case in cases:
        nifti_ct = next((case / n for n in ("ct.nii.gz", "ct.nii") if (case / n).is_file()), None)
        nifti_labels = next(
            (case / n for n in ("labels.nii.gz", "labels.nii") if (case / n).is_file()), None
        )
        if nifti_ct is not None and nifti_labels is not None:
            volumes.append(read_nifti_pair(nifti_ct, nifti_labels))
        elif (case / "ct").is_dir() and (case / "seg.dcm").is_file():
            volumes.append(read_dicom_with_seg(case / "ct", case / "seg.dcm"))
        else:
            raise InputRefused(
                f"{case}: expected ct.nii.gz with labels.nii.gz, or a ct/ DICOM folder with "
                f"seg.dcm; found {sorted(p.name for p in case.iterdir())}"
            )
    if not volumes:
        raise InputRefused(f"{root}: expected one sub-folder per labelled case, found none")
    return volumes
