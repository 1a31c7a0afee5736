"""How long load_ct takes on a 200-slice 512x512 synthetic CT series.

The series is written first (untimed), uncompressed and as JPEG 2000 lossless, then each is
loaded ``--repeat`` times; the table shows the best and median wall time, slices/s and the
smallest CPU time, for the default decoding thread pool and for one decoding thread.

    python bench/bench_read.py [--slices 200] [--rows 512] [--repeat 3] [--skip-j2k]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from habitus.dicom import load_ct
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series


def write_copies(root: Path, slices: int, rows: int, with_j2k: bool) -> dict[str, Path]:
    shape = (slices, rows, rows)
    spacing = (1.0, 400.0 / rows, 400.0 / rows)
    hu, _ = synthetic_torso(shape, spacing, seed=0)
    geometry = axial_geometry(shape, spacing)
    syntaxes = {"uncompressed": ExplicitVRLittleEndian}
    if with_j2k:
        syntaxes["JPEG 2000 lossless"] = JPEG2000Lossless
    folders = {}
    for label, syntax in syntaxes.items():
        folder = root / label.replace(" ", "_")
        start = time.perf_counter()
        write_series(folder, hu, geometry, transfer_syntax=syntax, study_uid="1.2.3.4")
        print(f"wrote {label}: {time.perf_counter() - start:.1f} s (untimed setup)")
        folders[label] = folder
    return folders


def time_load(folder: Path, repeat: int, workers: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (all threads of this process) of each load."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        loaded = load_ct(folder, decode_workers=workers)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    assert loaded.volume.hu.shape[0] > 0
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-j2k", action="store_true", help="uncompressed only")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s); {args.slices} slices of {args.rows}x{args.rows}")
    default_workers = min(4, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="habitus-bench-") as tmp:
        folders = write_copies(Path(tmp), args.slices, args.rows, not args.skip_j2k)
        print(f"load average before timing: {os.getloadavg()[0]:.1f} (other work skews wall time)")
        header = f"{'series':<20} {'threads':>7} {'best s':>7} {'median s':>9} {'slices/s':>9}"
        print(f"\n{header} {'cpu s':>6}")
        for label, folder in folders.items():
            for workers in (default_workers, 1):
                walls, cpus = time_load(folder, args.repeat, workers)
                best = min(walls)
                print(
                    f"{label:<20} {workers:>7} {best:>7.2f} {statistics.median(walls):>9.2f} "
                    f"{args.slices / best:>9.0f} {min(cpus):>6.2f}"
                )


if __name__ == "__main__":
    main()
