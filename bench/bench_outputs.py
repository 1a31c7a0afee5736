"""What writing the outputs costs for a 200-slice 512x512 scan: DICOM-SEG, SR, preview, report.

The label map is synthetic (body layers of all seven classes on every slice, so the SEG has
about one frame per class per slice, as a real torso scan does); the source series exists only
as headers. The first build in a process also loads highdicom's tables of the standard, so it is
shown apart ("cold"); the table then gives the median of ``--repeat`` warm runs.

    python bench/bench_outputs.py [--slices 200] [--rows 512] [--repeat 3] [--compression]
                                  [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, JPEG2000Lossless

from habitus import PIPELINE_VERSION, __version__
from habitus.labels import Tissue
from habitus.metrics.class_volumes import class_measurements
from habitus.outputs.preview import save_preview
from habitus.outputs.report import InputInfo, ModelSummary, PatientInfo, Report
from habitus.outputs.seg import build_segmentation
from habitus.outputs.sr import build_sr
from habitus.outputs.writer import write_outputs
from habitus.segment.base import ModelInfo
from habitus.uids import derived_uid
from habitus.volume import CTVolume, Geometry, SourceSeries

MODEL = ModelInfo(model_id="habitus-unet3d-cpu", version="1.0.0", kind="onnx", sha256="0" * 64)


def synthetic_scan(slices: int, rows: int) -> tuple[CTVolume, NDArray[np.uint8]]:
    """A torso-like label map whose layers change size along the scan, its HU and headers."""
    j, i = np.ogrid[:rows, :rows]
    labels = np.zeros((slices, rows, rows), np.uint8)
    for k in range(slices):
        s = 0.85 + 0.15 * np.sin(k / slices * np.pi)  # body wider in the middle of the scan
        r = ((j - rows / 2) / (0.40 * rows * s)) ** 2 + ((i - rows / 2) / (0.45 * rows * s)) ** 2
        plane = labels[k]
        plane[r < 1.0] = Tissue.SKIN
        plane[r < 0.9] = Tissue.SF
        plane[r < 0.62] = Tissue.MUSCLE
        plane[r < 0.45] = Tissue.AVF
        plane[r < 0.25] = Tissue.IO
        spine = ((j - 0.68 * rows) / (0.07 * rows)) ** 2 + ((i - rows / 2) / (0.07 * rows)) ** 2
        plane[spine < 1.0] = Tissue.BONE
        plane[spine < 0.2] = Tissue.CNS
    lut = np.array([-1000, 20, 700, 50, -100, -110, 45, 30], np.int16)
    hu = lut[labels] + np.random.default_rng(0).normal(0, 10, labels.shape).astype(np.int16)
    spacing = (2.0, 400.0 / rows, 400.0 / rows)
    geometry = Geometry(spacing=spacing, origin=(-200.0, -200.0, -400.0))
    study, series, frame = (derived_uid("bench", kind) for kind in ("study", "series", "for"))
    headers = [_header(k, rows, spacing, geometry, study, series, frame) for k in range(slices)]
    source = SourceSeries(study, series, frame, headers, description="Synthetic torso 2 mm")
    return CTVolume(hu=hu, geometry=geometry, source=source, slice_thickness_mm=2.0), labels


def _header(
    k: int,
    rows: int,
    spacing: tuple[float, float, float],
    geometry: Geometry,
    study: str,
    series: str,
    frame: str,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = derived_uid("bench", "instance", str(k))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.Modality, ds.Manufacturer = "CT", "Synthetic"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Bench^Torso", "B1", "", "M"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240101", "120000", ""
    ds.ReferringPhysicianName, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "", "1", 2, k + 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [float(v) for v in geometry.slice_position(k)]
    ds.PixelSpacing = [spacing[1], spacing[2]]
    ds.SliceThickness = spacing[0]
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def make_report(volume: CTVolume, labels: NDArray[np.uint8]) -> Report:
    return Report(
        habitus_version=__version__,
        pipeline_version=PIPELINE_VERSION,
        created=datetime(2024, 1, 1, 12, 0, 0),
        input=InputInfo(
            source="bench", format="dicom", shape=volume.shape, spacing_mm=volume.geometry.spacing
        ),
        model=ModelSummary(
            model_id=MODEL.model_id, version=MODEL.version, kind="onnx", device="cpu"
        ),
        patient=PatientInfo(),
        classes=class_measurements(labels, volume.hu, volume.geometry),
    )


def timed(action: Callable[[], bytes]) -> tuple[float, bytes]:
    """CPU seconds (all threads of this process) and result of ``action``."""
    start = time.process_time()
    result = action()
    return time.process_time() - start, result


def encoded(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def run_once(
    volume: CTVolume, labels: NDArray[np.uint8], report: Report, out: Path
) -> tuple[dict[str, tuple[float, float]], int]:
    """Wall and CPU seconds per step of one warm run, and the number of SEG frames."""
    marks: list[tuple[float, float]] = []

    def mark() -> None:
        marks.append((time.perf_counter(), time.process_time()))

    mark()
    seg = build_segmentation(labels, volume, MODEL, created=report.created)
    mark()
    seg.save_as(out / "seg.dcm", enforce_file_format=True)
    mark()
    sr = build_sr(report, seg, volume, MODEL)
    mark()
    sr.save_as(out / "sr.dcm", enforce_file_format=True)
    mark()
    save_preview(out / "preview.png", volume, labels, model=MODEL)
    mark()
    write_outputs(
        out / "all", report=report.model_copy(deep=True), labels=labels, volume=volume, model=MODEL
    )
    mark()

    def span(a: int, b: int) -> tuple[float, float]:
        return marks[b][0] - marks[a][0], marks[b][1] - marks[a][1]

    steps = {
        "SEG build": span(0, 1),
        "SEG write": span(1, 2),
        "SR build": span(2, 3),
        "SR write": span(3, 4),
        "SEG + SR": span(0, 4),
        "preview (render + PNG)": span(4, 5),
        "write_outputs, all four": span(5, 6),
    }
    return steps, int(seg.NumberOfFrames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compression", action="store_true", help="also measure deflate and JPEG 2000 for the SEG"
    )
    parser.add_argument("--profile", action="store_true", help="profile one warm SEG build")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    volume, labels = synthetic_scan(args.slices, args.rows)
    report = make_report(volume, labels)
    out = Path(tempfile.mkdtemp(prefix="habitus-bench-outputs-"))

    start = time.perf_counter()
    build_segmentation(labels, volume, MODEL, created=report.created)
    cold = time.perf_counter() - start
    rows: dict[str, list[tuple[float, float]]] = {}
    frames = 0
    for _ in range(args.repeat):
        steps, frames = run_once(volume, labels, report, out)
        for name, value in steps.items():
            rows.setdefault(name, []).append(value)
    sizes: dict[str, int] = {}
    for name in ("seg.dcm", "sr.dcm", "preview.png"):
        sizes[name] = (out / name).stat().st_size

    print(
        f"{os.cpu_count()} CPU(s); label map {args.slices} x {args.rows} x {args.rows}, "
        f"all seven classes; SEG: {frames} frames, BINARY, explicit VR little endian"
    )
    print(f"cold SEG build (first in process, loads highdicom's tables): {cold:6.2f} s")
    print(f"load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after the runs")
    print(f"{'step':<28}{'wall median':>12}{'wall min':>10}{'CPU median':>12}")
    for name, values in rows.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(
            f"{name:<28}{statistics.median(walls):>12.2f}{min(walls):>10.2f}"
            f"{statistics.median(cpus):>12.2f}"
        )
    for name, size in sizes.items():
        print(f"{name:<28}{size / 1e6:>10.2f} MB")

    if args.compression:
        compare_compression(labels, volume, report)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        build_segmentation(labels, volume, MODEL, created=report.created)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(15)


def compare_compression(labels: NDArray[np.uint8], volume: CTVolume, report: Report) -> None:
    seg = build_segmentation(labels, volume, MODEL, created=report.created)
    t_native, native = timed(lambda: encoded(seg))
    print(f"\n{'SEG encoding':<40}{'CPU s':>7}{'MB':>9}")
    print(f"{'native, bit-packed (default)':<40}{t_native:>7.2f}{len(native) / 1e6:>9.2f}")
    for level in (1, 6):
        start = time.process_time()
        packed = zlib.compress(native, level)
        t_zlib = time.process_time() - start
        print(
            f"{f'  + zlib level {level} of those bytes':<40}{t_zlib:>7.2f}{len(packed) / 1e6:>9.2f}"
        )
    seg.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    t_deflated, deflated = timed(lambda: encoded(seg))
    print(f"{'Deflated Explicit VR LE (pydicom)':<40}{t_deflated:>7.2f}{len(deflated) / 1e6:>9.2f}")
    part = min(20, labels.shape[0])
    assert volume.source is not None
    sub_volume = CTVolume(
        hu=volume.hu[:part],
        geometry=volume.geometry,
        source=replace(volume.source, headers=volume.source.headers[:part]),
    )
    t_j2k, j2k = timed(
        lambda: encoded(
            build_segmentation(
                labels[:part], sub_volume, MODEL, transfer_syntax_uid=JPEG2000Lossless
            )
        )
    )
    scale = labels.shape[0] / part
    print(
        f"{f'JPEG 2000 lossless, x{scale:.0f} from {part} slices':<40}"
        f"{t_j2k * scale:>7.2f}{len(j2k) * scale / 1e6:>9.2f}"
    )


if __name__ == "__main__":
    main()
