"""Write the outputs of one analysis into a folder: seg.dcm, sr.dcm, preview.png, report.json.

Each file is written to a temporary name beside its target and renamed into place, so a reader
never sees half a file and a retried job simply replaces what an interrupted one left. The
report is written last, after ``report.outputs`` names the files that exist.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from habitus.outputs.preview import PreviewOptions, save_preview
from habitus.outputs.report import Report
from habitus.outputs.seg import build_segmentation
from habitus.outputs.sr import MeasurementGroup, build_sr
from habitus.pet.sample import SuvImage
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume

FILE_MODE = 0o644

FILE_NAMES: dict[str, str] = {
    "seg": "seg.dcm",
    "sr": "sr.dcm",
    "preview": "preview.png",
    "report": "report.json",
}


def dicom_skip_reason(volume: CTVolume, labels: NDArray[np.integer]) -> str | None:
    """Why no SEG and SR can be written for this analysis, or None when they can."""
    if volume.source is None:
        return (
            "DICOM-SEG and SR were not written: the input is NIfTI, "
            "which has no DICOM series for them to reference"
        )
    if not np.any(labels):
        return (
            "DICOM-SEG and SR were not written: the segmentation found no tissue "
            "(every voxel is background)"
        )
    return None


def write_outputs(
    out_dir: Path | str,
    *,
    report: Report,
    labels: NDArray[np.integer],
    volume: CTVolume,
    model: ModelInfo,
    preview: PreviewOptions | None = None,
    sr_groups: Sequence[MeasurementGroup] = (),
    sr_evidence: Sequence[Dataset] = (),
    pet: SuvImage | None = None,
) -> dict[str, Path]:
    """Write every output that applies and return kind -> path ("seg", "sr", "preview",
    "report"). DICOM objects are skipped, with a warning in the report, for NIfTI input and for
    an all-background label map. ``report.outputs``, ``report.warnings`` and
    ``report.timings_s["outputs"]`` are updated in place;
    the DICOM objects are dated by ``report.created``, so rewriting the same report gives the
    same bytes. ``pet``, the measured PET, is fused over the preview's axial slices."""
    start = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    skip = dicom_skip_reason(volume, labels)
    if skip is None:
        seg = build_segmentation(labels, volume, model, created=report.created)
        sr = build_sr(
            report,
            seg,
            volume,
            model,
            extra_groups=sr_groups,
            extra_evidence=sr_evidence,
            created=report.created,
        )
        written["seg"] = _write_atomically(
            folder / FILE_NAMES["seg"], lambda path: seg.save_as(path, enforce_file_format=True)
        )
        written["sr"] = _write_atomically(
            folder / FILE_NAMES["sr"], lambda path: sr.save_as(path, enforce_file_format=True)
        )
    elif skip not in report.warnings:
        report.warnings.append(skip)

    options = preview or PreviewOptions()
    written["preview"] = _write_atomically(
        folder / FILE_NAMES["preview"],
        lambda path: save_preview(
            path,
            volume,
            labels,
            axial_slices=options.axial_slices,
            marks=options.marks,
            text_lines=options.text_lines,
            model=model,
            pet=pet,
        ),
    )

    report_path = folder / FILE_NAMES["report"]
    report.outputs = {kind: path.name for kind, path in written.items()}
    report.outputs["report"] = report_path.name
    # The report is the last file; the milliseconds it takes are not worth a second write.
    report.timings_s["outputs"] = round(time.perf_counter() - start, 3)
    written["report"] = _write_atomically(
        report_path, lambda path: path.write_text(report.model_dump_json(indent=2) + "\n")
    )
    return written


def _write_atomically(target: Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a temporary file beside ``target``, then rename it into place."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(FILE_MODE)  # mkstemp makes it private; outputs are meant to be shared
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
