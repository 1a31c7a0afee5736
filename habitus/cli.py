"""`habitus ...` commands: analyze a study, make demo data (and, with the api extra, serve)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from habitus import __version__
from habitus.errors import HabitusError
from habitus.progress import Stage, overall_percent

if TYPE_CHECKING:
    from habitus.pet.schema import PetSection

# soft_wrap: long paths are printed whole, never broken across lines by the console
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except HabitusError as error:
        err_console.print(f"[bold red]habitus: {type(error).__name__}:[/] {escape(str(error))}")
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="habitus", description=__doc__)
    parser.add_argument("--version", action="version", version=f"habitus {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze", help="segment a CT study and write SEG, SR, report and preview"
    )
    analyze.add_argument("path", type=Path, nargs="+", help="DICOM folder, zip, files or NIfTI")
    analyze.add_argument("--out", type=Path, required=True, help="output folder")
    analyze.add_argument("--height", type=float, help="height in cm (overrides the header)")
    analyze.add_argument("--weight", type=float, help="weight in kg (overrides the header)")
    analyze.add_argument("--sex", choices=["M", "F"], help="sex (overrides the header)")
    analyze.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="where the model runs (default: HABITUS_DEVICE, else auto)",
    )
    analyze.add_argument(
        "--segmenter",
        choices=["auto", "model", "rules"],
        help="bundled ONNX model, rule-based segmenter, or auto (the model where its "
        "manifest says it is validated, else the rules); default: HABITUS_SEGMENTER, else auto",
    )
    analyze.add_argument("--json", action="store_true", help="print the report as JSON")
    analyze.set_defaults(run=_analyze)

    demo = commands.add_parser("demo", help="write a synthetic PET-CT study to try Habitus on")
    demo.add_argument("out", type=Path, help="folder to write the DICOM study into")
    demo.add_argument("--slices", type=int, default=120, help="CT slices, 2 mm apart")
    demo.add_argument("--rows", type=int, default=256, help="rows = columns of each CT slice")
    demo.set_defaults(run=_demo)

    # Commands of the other packages (`habitus serve` from service) register through an
    # entry point, so that the core never imports them.
    for entry in entry_points(group="habitus.commands"):
        entry.load()(commands)
    return parser


def _analyze(args: argparse.Namespace) -> int:
    from habitus.config import get_settings
    from habitus.errors import InputRefused
    from habitus.pipeline import AnalysisOptions, analyze

    if args.out.exists() and not args.out.is_dir():
        # checked before the analysis, which would otherwise fail only at its very end
        raise InputRefused(f"--out {args.out} is a file; expected a folder (new or existing)")

    options = AnalysisOptions(
        height_cm=args.height,
        weight_kg=args.weight,
        sex=args.sex,
        device=args.device or get_settings().device,
        segmenter=args.segmenter or get_settings().segmenter,
    )
    source: Path | list[Path] = args.path[0] if len(args.path) == 1 else list(args.path)
    with Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=100.0)

        def show(stage: Stage, fraction: float) -> None:
            bar.update(task, description=stage.value, completed=overall_percent(stage, fraction))

        result = analyze(source, args.out, options, progress=show)

    if args.json:
        console.print_json(result.report.model_dump_json())
    else:
        _print_summary(result.report, result.files)
    return 0


def _print_summary(report: object, files: dict[str, Path]) -> None:
    from habitus.outputs.report import Report

    assert isinstance(report, Report)
    chosen = report.input.chosen_series
    what = f"{chosen.description or chosen.series_instance_uid}" if chosen else report.input.source
    console.print(
        f"[bold]{escape(what)}[/]  {report.input.shape[0]} slices, "
        f"{' x '.join(f'{s:g}' for s in report.input.spacing_mm)} mm  "
        f"segmenter {report.model.model_id} {report.model.version} ({report.model.device})"
    )
    table = Table("class", "volume (cm³)", "mean HU", title="Tissue volumes")
    for row in report.classes:
        mean = "-" if row.mean_hu is None else f"{row.mean_hu:.0f}"
        table.add_row(row.name, f"{row.volume_cm3:.1f}", mean)
    console.print(table)
    shown: set[str] = set()
    if report.body_composition is not None:
        for line in report.body_composition.summary_lines:
            console.print(line, markup=False)
        # the summary's "review required" line already lists these
        shown.update(report.body_composition.quality.review_reasons)
    if report.pet is not None:
        shown.add(_print_pet(report.pet))
    for warning in report.warnings:
        if warning not in shown:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings_s.items())
    console.print(f"timings: {timings}")
    for kind, path in files.items():
        console.print(f"{kind:>8}: {path}", markup=False)


def _print_pet(pet: PetSection) -> str:
    """The PET line and SUV table; returns the line (a refusal is also among the warnings)."""
    from habitus.pet.summary import COLUMNS, TABLE_TITLE, pet_line, suv_table

    line = pet_line(pet)
    console.print(line, markup=False)
    table = suv_table(pet)
    if table is not None:
        shown = Table(*COLUMNS, title=TABLE_TITLE)
        for region, rows in table.groups:
            for n, row in enumerate(rows):
                shown.add_row(region if n == 0 else "", *row, end_section=n == len(rows) - 1)
        console.print(shown)
    return line


def _demo(args: argparse.Namespace) -> int:
    from habitus.phantoms.studies import write_petct_study

    study = write_petct_study(
        args.out, slices=args.slices, rows=args.rows, pixel_spacing=400.0 / args.rows
    )
    console.print(
        f"wrote a synthetic PET-CT study of {len(study.series)} series "
        f"({len(study.files)} files) to {args.out}",
        markup=False,
    )
    console.print(f"next: habitus analyze {args.out} --out {args.out}-result", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
