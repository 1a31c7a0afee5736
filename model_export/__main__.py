"""``python -m model_export train | census | export | evaluate | phantom | silver``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from habitus.errors import HabitusError

TARGETS: dict[str, dict[str, str]] = {
    "cpu": {
        "model_id": "habitus-unet3d-cpu",
        "description": "3D U-Net (Lee et al. 2021), CPU build",
    },
    "gpu": {
        "model_id": "habitus-unet3d-gpu",
        "description": "3D U-Net (Lee et al. 2021), GPU build",
    },
}
"""What ``export --target`` names a model by default: the device the model is sized for."""


def _tuple3(kind: type) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        parts = [kind(p) for p in text.replace("x", ",").split(",")]
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"expected three values like 4,4,4, found {text!r}")
        return tuple(parts)

    return parse


def _train(args: argparse.Namespace) -> int:
    from model_export.network import NetworkConfig
    from model_export.train import Runtime, TrainConfig, train

    config = TrainConfig(
        spacing_mm=args.spacing,
        patch_size=args.patch,
        batch_size=args.batch,
        steps=args.steps,
        learning_rate=args.lr,
        phantoms=args.phantoms,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
        network=NetworkConfig(width=args.width),
        class_weights=tuple(args.class_weights) if args.class_weights else None,
        schedule_start=args.schedule_start,
        lanes=args.lanes,
        refresh_every=args.refresh_every,
        reacquire_cases=not args.no_reacquire,
    )
    runtime = Runtime(
        device=args.device,
        precision=args.precision,
        workers=args.workers,
        log_every=args.log_every,
    )
    result = train(
        config,
        args.out,
        folder=args.data,
        resume=not args.restart,
        phantoms=not args.no_phantoms,
        runtime=runtime,
    )
    print(
        json.dumps(
            {
                "checkpoint": str(result.checkpoint),
                "steps": result.steps,
                "final_loss": result.final_loss,
                "seconds": round(result.seconds, 1),
                "device": result.device,
                "precision": result.precision,
                "workers": result.workers,
                "folder_cases": result.folder_cases,
            },
            indent=2,
        )
    )
    return 0


def _census(args: argparse.Namespace) -> int:
    from model_export.acquisition import Reacquisition
    from model_export.census import census
    from model_export.dataset import Augmentation
    from model_export.stream import PatchStream
    from model_export.train import TrainConfig, stream_spec
    from model_export.training_pairs import read_labelled_folder

    config = TrainConfig(
        spacing_mm=args.spacing,
        patch_size=args.patch,
        batch_size=args.batch,
        phantoms=args.phantoms,
        lanes=args.lanes,
        refresh_every=args.refresh_every,
    )
    cases = read_labelled_folder(args.data) if args.data else []
    spec = stream_spec(config, phantoms=not args.no_phantoms)
    reacquisition = None if args.no_reacquire else Reacquisition()
    stop = args.first_step + args.batches
    stream = PatchStream(spec, args.first_step, stop, cases, Augmentation(), reacquisition)
    print(json.dumps(census(stream, args.batches).to_dict(), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from model_export.export import export_model

    target = TARGETS[args.target]
    result = export_model(
        args.checkpoint,
        args.out,
        model_id=args.model_id or target["model_id"],
        version=args.version,
        description=args.description or target["description"],
        overlap=args.overlap,
        batch_size=args.batch,
        patch_size=args.patch,
        refinement=None if args.no_refinement else "attenuation",
        evaluation=json.loads(args.evaluation.read_text()) if args.evaluation else None,
        training_notes={"target_device": args.target},
        parity_patches=args.parity_patches,
    )
    print(json.dumps(result, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from habitus.metrics.contrast import ContrastPhase
    from model_export.evaluate import run_evaluation

    report = run_evaluation(
        model=args.model,
        data_dir=args.data,
        phantom_seeds=list(range(args.first_seed, args.first_seed + args.phantoms)),
        include_rules=not args.no_rules,
        out_json=args.json,
        record=args.record,
        contrast=tuple(ContrastPhase(p) for p in args.contrast),
        cases=tuple(args.case),
    )
    print(report)
    return 0


def _phantom(args: argparse.Namespace) -> int:
    from habitus.phantoms import make_phantom
    from model_export.training_pairs import write_nifti_pair

    phantom = make_phantom(args.seed, spacing_mm=args.spacing, scan_range=args.range)
    ct, labels = write_nifti_pair(
        phantom.volume.hu, phantom.labels, phantom.volume.geometry, args.out
    )
    print(json.dumps({"ct": str(ct), "labels": str(labels), "shape": phantom.volume.shape}))
    return 0


def _silver(args: argparse.Namespace) -> int:
    from habitus.metrics.contrast import ContrastPhase
    from model_export.silver import write_silver_cases

    phases = tuple(ContrastPhase(p) for p in args.contrast)
    written = write_silver_cases(args.data, args.out, phases)
    print(json.dumps(written, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train or resume a 3D U-Net")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt and logs")
    p.add_argument("--data", type=Path, help="folder of labelled cases (NIfTI pairs, DICOM+SEG)")
    p.add_argument("--no-phantoms", action="store_true", help="train on --data only")
    p.add_argument(
        "--no-reacquire",
        action="store_true",
        help="use --data cases as scanned (default: fresh slice thickness, pixel size, kernel, "
        "noise, field of view, range and tilt; model_export/acquisition.py)",
    )
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=8)
    p.add_argument(
        "--phantoms",
        type=int,
        default=32,
        help="phantoms held in memory (rounded up to a multiple of --lanes)",
    )
    p.add_argument("--spacing", type=_tuple3(float), default=(4.0, 4.0, 4.0))
    p.add_argument("--patch", type=_tuple3(int), default=(24, 64, 64))
    p.add_argument("--threads", type=int, default=2, help="CPU threads of the network")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: CUDA when PyTorch sees a GPU, else the CPU",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 autocast on a GPU that supports it, fp32 on the CPU",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="processes generating patches (default: 1 on the CPU, 0 with a single core; on a "
        "GPU the largest divisor of --lanes below the core count)",
    )
    p.add_argument("--lanes", type=int, default=8, help="phantom pools that steps take turns on")
    p.add_argument(
        "--refresh-every",
        type=int,
        default=10,
        help="steps per fresh phantom (phantoms are the costly part of the patch supply)",
    )
    p.add_argument(
        "--log-every", type=int, default=50, help="steps between steps/s and data-wait lines"
    )
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument(
        "--class-weights", type=float, nargs=8, help="cross-entropy weight of labels 0-7"
    )
    p.add_argument(
        "--schedule-start", type=int, default=0, help="restart warm-up and decay at this step"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "census",
        help="each class's share of the voxels the loss sees over the first batches of a run "
        "(no network; the batches train would draw)",
    )
    p.add_argument("--data", type=Path, help="folder of labelled cases, as for train")
    p.add_argument("--no-phantoms", action="store_true")
    p.add_argument("--no-reacquire", action="store_true")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--first-step", type=int, default=0)
    p.add_argument("--phantoms", type=int, default=32)
    p.add_argument("--spacing", type=_tuple3(float), default=(4.0, 4.0, 4.0))
    p.add_argument("--patch", type=_tuple3(int), default=(24, 64, 64))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--refresh-every", type=int, default=10)
    p.set_defaults(func=_census)

    p = sub.add_parser("export", help="write ONNX + manifest + parity report")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for <model_id>.onnx/.json")
    p.add_argument(
        "--target",
        choices=tuple(TARGETS),
        default="cpu",
        help="device the model is sized for; names it habitus-unet3d-<target> by default",
    )
    p.add_argument("--model-id", help="default: habitus-unet3d-<target>")
    p.add_argument("--version", default="0.1.0")
    p.add_argument("--description", help="default: names the target device")
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--patch", type=_tuple3(int), help="inference patch (default: training patch)")
    p.add_argument("--no-refinement", action="store_true")
    p.add_argument(
        "--parity-patches", type=int, default=4, help="held-out patches for the parity check"
    )
    p.add_argument("--evaluation", type=Path, help="evaluation JSON to record in the manifest")
    p.set_defaults(func=_export)

    p = sub.add_parser("evaluate", help="per-class Dice on held-out phantoms and real scans")
    p.add_argument("--model", type=Path, help="manifest (default: the bundled model)")
    p.add_argument("--data", type=Path, default=None, help="real scans (default ../shared/data)")
    p.add_argument("--phantoms", type=int, default=4)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--no-rules", action="store_true", help="skip the rule-based comparison")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--record", action="store_true", help="store a summary in --model's manifest")
    p.add_argument(
        "--contrast",
        nargs="*",
        default=[],
        choices=["arterial", "portal_venous", "delayed"],
        help="also evaluate each real scan with this contrast painted in",
    )
    p.add_argument(
        "--case",
        action="append",
        default=[],
        help="only this real scan (repeatable): the held-out scan of a leave-one-out run",
    )
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("phantom", help="write one phantom as ct.nii.gz + labels.nii.gz")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--spacing", type=_tuple3(float), default=(2.5, 1.5, 1.5))
    p.add_argument("--range", default="chest_abdomen_pelvis")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_phantom)

    p = sub.add_parser(
        "silver",
        help="turn the real scans and their references into seven-class label maps "
        "(ct.nii.gz, labels.nii.gz and preview.png per case)",
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, required=True, help="one folder per case is written here")
    p.add_argument(
        "--contrast",
        nargs="*",
        default=["arterial", "portal_venous", "delayed"],
        choices=["arterial", "portal_venous", "delayed"],
        help="also write each case with this contrast painted into its reference vessels and "
        "organs (NAME-PHASE folders); none with an empty list",
    )
    p.set_defaults(func=_silver)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except HabitusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
