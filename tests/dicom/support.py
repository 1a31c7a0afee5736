"""Small synthetic series and header edits for the DICOM input tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from habitus.dicom import LoadedCT, SeriesVerdict
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.volume import CTVolume, Geometry, SourceSeries

SHAPE = (20, 40, 40)  # more than the default minimum of 16 slices, small enough to be quick
SPACING = (2.5, 8.0, 8.0)  # 320 mm field of view


def small_series(
    folder: Path,
    *,
    shape: tuple[int, int, int] = SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    geometry: Geometry | None = None,
    seed: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
    **options: Any,
) -> tuple[list[Path], np.ndarray, Geometry]:
    """Write a small torso series; returns its files (in k order), HU and geometry."""
    hu, _ = synthetic_torso(shape, spacing, seed)
    geometry = geometry or axial_geometry(shape, spacing)
    options.setdefault("study_uid", "1.2.826.0.1.3680043.10.1234.1")
    files = write_series(folder, hu, geometry, transfer_syntax=transfer_syntax, **options)
    return files, hu, geometry


def edit(
    path: Path,
    change: Callable[[Dataset], None],
    target: Path | None = None,
    *,
    valid_meta: bool = True,
) -> Path:
    """Rewrite a DICOM file after ``change`` modified its dataset (in place by default).

    ``valid_meta=False`` writes the file meta header as it is, even with empty required UIDs.
    """
    ds = pydicom.dcmread(path)
    change(ds)
    out = target or path
    ds.save_as(out, enforce_file_format=valid_meta)
    return out


def assert_geometry_matches_headers(volume: CTVolume) -> None:
    """Every slice of the volume sits where its source header says, with its orientation."""
    assert volume.source is not None
    geometry = volume.geometry
    assert len(volume.source.headers) == volume.shape[0]
    for k, header in enumerate(volume.source.headers):
        expected = np.asarray([float(v) for v in header.ImagePositionPatient])
        np.testing.assert_allclose(geometry.slice_position(k), expected, atol=1e-3)
        orientation = [float(v) for v in header.ImageOrientationPatient]
        np.testing.assert_allclose(geometry.matrix[:, 2], orientation[:3], atol=1e-6)
        np.testing.assert_allclose(geometry.matrix[:, 1], orientation[3:], atol=1e-6)
        np.testing.assert_allclose(
            geometry.spacing[1:], [float(v) for v in header.PixelSpacing], atol=1e-6
        )
        assert int(header.Rows) == volume.shape[1] and int(header.Columns) == volume.shape[2]
        assert "PixelData" not in header


def source_of(loaded: LoadedCT) -> SourceSeries:
    """The DICOM source of a loaded volume (NIfTI input has none)."""
    assert loaded.volume.source is not None, "expected a DICOM volume"
    return loaded.volume.source


def chosen_of(loaded: LoadedCT) -> SeriesVerdict:
    """The verdict of the chosen series (NIfTI input has none)."""
    assert loaded.chosen is not None, "expected a chosen DICOM series"
    return loaded.chosen
