"""Where the ONNX segmenter's time goes on a 200 x 512 x 512 synthetic torso.

The model is built here with onnx.helper: ``intensity`` (a per-voxel classifier: the cost of
the engine around the network, i.e. its overhead) or ``conv`` (3x3x3 convolutions,
``--channels`` wide, ``--layers`` deep: a network with real arithmetic). The table splits one
``segment`` call into resample in (HU to the model grid and normalisation), inference (the
ONNX session), accumulate (Gaussian-weighted blending of the patches), softmax (once, on
the blended logits), argmax (on the model grid), resample out (labels back on the scan grid)
and refine (the attenuation refinement, with ``--refine``).

    python bench/bench_segment.py [--model intensity|conv] [--slices 200] [--rows 512]
        [--spacing 2.0 0.8 0.8] [--model-spacing 3.0 1.5 1.5] [--patch 64 128 128]
        [--overlap 0.5] [--batch 2] [--threads N] [--refine] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' model builders

from habitus.phantoms.torso import synthetic_torso  # noqa: E402
from habitus.phantoms.write_dicom import axial_geometry  # noqa: E402
from habitus.segment.manifest import manifest_for, write_manifest  # noqa: E402
from habitus.segment.onnx_segmenter import OnnxSegmenter  # noqa: E402
from habitus.segment.resample import grid_mapping  # noqa: E402
from habitus.segment.sliding_window import patch_starts  # noqa: E402
from habitus.volume import CTVolume  # noqa: E402
from tests.segment.onnx_models import NORMALIZATION, conv_model, intensity_model  # noqa: E402

STEPS = ("resample_in", "inference", "accumulate", "softmax", "argmax", "resample_out", "refine")


def build_model(folder: Path, args: argparse.Namespace) -> Path:
    if args.model == "conv":
        onnx_path = conv_model(folder / "bench.onnx", channels=args.channels, layers=args.layers)
    else:
        onnx_path = intensity_model(folder / "bench.onnx")
    manifest = manifest_for(
        onnx_path,
        model_id=f"bench-{args.model}",
        version="0",
        input_spacing_mm=tuple(args.model_spacing),
        patch_size=tuple(args.patch),
        overlap=args.overlap,
        batch_size=args.batch,
        normalization=NORMALIZATION,
        output_kind="logits",
        refinement="attenuation" if args.refine else None,
    )
    return write_manifest(manifest, folder / "bench.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["intensity", "conv"], default="intensity")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--spacing", type=float, nargs=3, default=[2.0, 0.8, 0.8])
    parser.add_argument("--model-spacing", type=float, nargs=3, default=[3.0, 1.5, 1.5])
    parser.add_argument("--patch", type=int, nargs=3, default=[64, 128, 128])
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--refine", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    shape = (args.slices, args.rows, args.rows)
    spacing = (args.spacing[0], args.spacing[1], args.spacing[2])
    start = time.perf_counter()
    hu, _ = synthetic_torso(shape, spacing, seed=0)
    volume = CTVolume(hu=hu, geometry=axial_geometry(shape, spacing))
    mapping = grid_mapping(shape, spacing, tuple(args.model_spacing))
    patches = len(patch_starts(mapping.model_shape, args.patch, 1 - args.overlap))
    print(f"{os.cpu_count()} CPU(s), threads={args.threads or 'onnxruntime default'}")
    network = f"{args.layers} conv layers x {args.channels}" if args.model == "conv" else "none"
    print(
        f"scan {shape} at {spacing} mm -> model grid {mapping.model_shape} at "
        f"{tuple(round(s, 3) for s in mapping.model_spacing)} mm; {patches} patches of "
        f"{tuple(args.patch)}, overlap {args.overlap}, batch {args.batch}; model {args.model} "
        f"({network})"
    )
    print(f"synthetic torso: {time.perf_counter() - start:.1f} s (untimed setup)")

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        segmenter = OnnxSegmenter(build_model(Path(folder), args), threads=args.threads)
        print(f"model build + session load: {time.perf_counter() - start:.2f} s")
        for run in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            labels = segmenter.segment(volume)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            assert labels.shape == shape
            timings = segmenter.last_timings
            print(
                f"\nrun {run + 1}: total {total:.2f} s wall, {cpu:.2f} s CPU (all threads), "
                f"on {segmenter.info.device}; 1-min load average: {os.getloadavg()[0]:.1f}"
            )
            for step in STEPS:
                if step in timings:
                    seconds = timings[step]
                    print(f"  {step:<13} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
            print(f"  labels present: {sorted(np.unique(labels).tolist())}")


if __name__ == "__main__":
    main()
