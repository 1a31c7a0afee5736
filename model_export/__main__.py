"""``python -m model_export train | census | export | evaluate | phantom | silver``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from habitus.errors import HabitusError

if TYPE_CHECKING:  # the commands import torch only when they run
    from model_export.network import NetworkConfig
    from model_export.train import Runtime, TrainConfig

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


def _given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The flags given that set a field of the dataclass ``cls`` (the flag's dest names it)."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given}


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe of ``train`` and ``census``: TrainConfig's defaults and the flags given.

    A recipe flag's dest is the TrainConfig field it sets and its default is SUPPRESS (not
    given, not in ``args``), so the defaults live in TrainConfig alone and a new option is a
    field and its flag (``_add_recipe_flags`` for both commands, or the train parser).
    """
    from model_export.network import NetworkConfig
    from model_export.train import TrainConfig

    values = _given(TrainConfig, args)
    if "width" in vars(args):
        values["network"] = NetworkConfig(width=args.width)
    elif getattr(args, "init_from", None) is not None:
        values["network"] = _init_network(args.init_from)
    if values.get("class_weights") is not None:
        values["class_weights"] = tuple(values["class_weights"])
    return TrainConfig(**values)


def _init_network(path: Path) -> NetworkConfig:
    """The network of the model ``--init-from`` names: the run's unless ``--width`` is given."""
    from habitus.segment.manifest import load_manifest
    from model_export.warm_start import find_manifest, network_config

    return network_config(load_manifest(find_manifest(path)))


def _runtime(args: argparse.Namespace) -> Runtime:
    from model_export.train import Runtime

    return Runtime(**_given(Runtime, args))


def _train(args: argparse.Namespace) -> int:
    from model_export.train import train

    result = train(
        _train_config(args),
        args.out,
        folder=args.data,
        resume=not args.restart,
        phantoms=not args.no_phantoms,
        runtime=_runtime(args),
        init_from=args.init_from,
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
                "init_from": result.init_from,
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
    from model_export.train import stream_spec
    from model_export.training_pairs import read_labelled_folder

    config = _train_config(args)
    cases = read_labelled_folder(args.data) if args.data else []
    spec = stream_spec(config, phantoms=not args.no_phantoms)
    reacquisition = Reacquisition() if config.reacquire_cases else None
    stop = args.first_step + args.batches
    stream = PatchStream(spec, args.first_step, stop, cases, Augmentation(), reacquisition)
    print(json.dumps(census(stream, args.batches).to_dict(), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from model_export.export import export_model
    from model_export.warm_start import source_of_checkpoint

    target = TARGETS[args.target]
    notes: dict[str, Any] = {"target_device": args.target}
    init_from = source_of_checkpoint(args.checkpoint)
    if init_from is not None:
        notes["init_from"] = init_from
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
        training_notes=notes,
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


def _recipe_flag(parser: argparse.ArgumentParser) -> Callable[..., argparse.Action]:
    """``add_argument`` for a flag that sets a field of TrainConfig or Runtime: absent from
    the parsed arguments unless given, so the dataclass's default stands (``_given``)."""

    def add(*flags: str, **options: Any) -> argparse.Action:
        return parser.add_argument(*flags, default=argparse.SUPPRESS, **options)

    return add


def _add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of what ``train`` and ``census`` draw: the cases, the phantoms, the patches."""
    parser.add_argument(
        "--data", type=Path, help="folder of labelled cases (NIfTI pairs, DICOM+SEG)"
    )
    parser.add_argument("--no-phantoms", action="store_true", help="draw from --data only")
    recipe = _recipe_flag(parser)
    recipe(
        "--no-reacquire",
        dest="reacquire_cases",
        action="store_false",
        help="use --data cases as scanned (default: fresh slice thickness, pixel size, kernel, "
        "noise, field of view, range and tilt; model_export/acquisition.py)",
    )
    recipe("--batch", dest="batch_size", metavar="BATCH", type=int)
    recipe(
        "--phantoms",
        type=int,
        help="phantoms held in memory (rounded up to a multiple of --lanes)",
    )
    recipe("--spacing", dest="spacing_mm", metavar="SPACING", type=_tuple3(float))
    recipe("--patch", dest="patch_size", metavar="PATCH", type=_tuple3(int))
    recipe("--lanes", type=int, help="phantom pools that steps take turns on")
    recipe(
        "--refresh-every",
        type=int,
        help="steps per fresh phantom (phantoms are the costly part of the patch supply)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train or resume a 3D U-Net")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt and logs")
    _add_recipe_flags(p)
    recipe = _recipe_flag(p)
    recipe("--steps", type=int)
    recipe("--lr", dest="learning_rate", metavar="LR", type=float)
    recipe("--width", type=int, help="channels of the network's first level")
    recipe("--threads", type=int, help="CPU threads of the network")
    runtime = _recipe_flag(p)  # the same for the fields of Runtime
    runtime(
        "--device",
        choices=("auto", "cpu", "cuda"),
        help="auto: CUDA when PyTorch sees a GPU, else the CPU",
    )
    runtime(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="auto: bf16 autocast on a GPU that supports it, fp32 on the CPU",
    )
    runtime(
        "--workers",
        type=int,
        help="processes generating patches (default: 1 on the CPU, 0 with a single core; on a "
        "GPU the largest divisor of --lanes below the core count)",
    )
    runtime("--log-every", type=int, help="steps between steps/s and data-wait lines")
    recipe("--checkpoint-every", type=int)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    recipe("--class-weights", type=float, nargs=8, help="cross-entropy weight of labels 0-7")
    recipe("--schedule-start", type=int, help="restart warm-up and decay at this step")
    p.add_argument(
        "--init-from",
        type=Path,
        help="start from an exported model's weights (its manifest .json or .onnx file), at "
        "step 0 or --schedule-start with a fresh optimizer; its network unless --width is "
        "given (a different one is refused); ignored when the run resumes from its checkpoint",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "census",
        help="each class's share of the voxels the loss sees over the first batches of a run "
        "(no network; the batches train would draw)",
    )
    _add_recipe_flags(p)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--first-step", type=int, default=0)
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
