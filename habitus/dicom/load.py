"""load_ct: from files on disk to the HU volume of the one series worth analysing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from habitus.dicom.attributes import text
from habitus.dicom.choose import Choice, SeriesVerdict, choose_series
from habitus.dicom.group import SeriesGroup, group_series
from habitus.dicom.pixels import decode_hu
from habitus.dicom.read import HeaderScan, scan_headers
from habitus.dicom.series_rules import SeriesRules
from habitus.dicom.sources import FileSource, close_sources, collect_sources, is_nifti
from habitus.errors import CorruptFile, GeometryRefused, InputRefused
from habitus.progress import ProgressCallback, Stage, StepCallback, ignore_progress
from habitus.volume import CTVolume, SourceSeries

MAX_LISTED = 5


@dataclass(frozen=True)
class LoadedCT:
    """The volume to analyse, where it came from, and what was noticed on the way."""

    volume: CTVolume
    format: Literal["dicom", "nifti"]
    chosen: SeriesVerdict | None  # None for NIfTI input
    others: list[SeriesVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_ct(
    source: Path | str | Sequence[Path | str],
    rules: SeriesRules | None = None,
    progress: ProgressCallback | None = None,
    *,
    decode_workers: int | None = None,
) -> LoadedCT:
    """Read a DICOM folder, zip, list of files or a NIfTI file into the CT volume to analyse.

    ``decode_workers`` bounds the threads that decode pixel data (default: up to 4).

    Raises InputRefused (or its subclasses CorruptFile, NoSuitableSeries, GeometryRefused)
    with a message that says what was expected and what was found.
    """
    report = progress or ignore_progress
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    if len(paths) == 1 and is_nifti(paths[0]):
        return _load_nifti(paths[0], report)
    rules = rules or SeriesRules()

    report(Stage.READ, 0.0)
    sources = collect_sources(paths)
    try:
        return _load_dicom(paths, sources, rules, report, decode_workers)
    finally:
        close_sources(sources)


def _load_dicom(
    paths: list[Path],
    sources: list[FileSource],
    rules: SeriesRules,
    report: ProgressCallback,
    decode_workers: int | None,
) -> LoadedCT:
    scan = scan_headers(sources, lambda f: report(Stage.READ, f))
    warnings = _scan_warnings(scan)
    if not scan.instances:
        raise _nothing_readable(paths, scan)

    report(Stage.CHOOSE, 0.0)
    grouping = group_series(scan.instances)
    warnings += grouping.warnings
    _check_one_study(grouping.series, rules)
    try:
        choice = choose_series(grouping.series, rules)
    except GeometryRefused as exc:
        raise GeometryRefused(f"{exc}{_corrupt_hint(scan)}") from exc
    warnings += choice.warnings
    report(Stage.CHOOSE, 1.0)

    report(Stage.VOLUME, 0.0)
    volume = _build_volume(choice, lambda f: report(Stage.VOLUME, f), decode_workers)
    report(Stage.VOLUME, 1.0)
    return LoadedCT(volume, "dicom", choice.chosen, choice.others, warnings)


def _check_one_study(series: list[SeriesGroup], rules: SeriesRules) -> None:
    """Refuse input whose CT series belong to more than one study.

    The series chooser would rank one patient's or one day's series against another's and
    report on whichever it prefers; which study is meant is the user's to say.
    """
    studies: dict[str, list[SeriesGroup]] = {}
    for group in series:
        if text(group.first, "Modality").upper() == rules.modality.upper():
            studies.setdefault(group.study_instance_uid, []).append(group)
    if len(studies) < 2:
        return
    listing = "\n".join(
        f"- patient {text(groups[0].first, 'PatientID') or '(no ID)'}, study of "
        f"{text(groups[0].first, 'StudyDate') or '(no date)'} "
        f"'{text(groups[0].first, 'StudyDescription')}' ({uid}): {len(groups)} "
        f"{rules.modality} series"
        for uid, groups in studies.items()
    )
    raise InputRefused(
        f"expected the {rules.modality} series of one study; found {len(studies)} studies:\n"
        f"{listing}\nanalyse one study at a time (pass its folder or files)"
    )


def _build_volume(
    choice: Choice, step: StepCallback | None = None, workers: int | None = None
) -> CTVolume:
    plan = choice.plan
    assert plan.geometry is not None  # a chosen series always has a regular geometry
    instances = [choice.group.instances[i] for i in plan.order]
    first = instances[0].header
    hu = decode_hu(instances, int(first.Rows), int(first.Columns), step, workers)
    headers = [i.header for i in instances]
    source = SourceSeries(
        study_instance_uid=choice.group.study_instance_uid,
        series_instance_uid=choice.group.series_instance_uid,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "") or ""),
        headers=headers,
        description=choice.chosen.description,
    )
    return CTVolume(
        hu=hu,
        geometry=plan.geometry,
        source=source,
        slice_thickness_mm=choice.chosen.slice_thickness_mm,
    )


def _load_nifti(path: Path, report: ProgressCallback) -> LoadedCT:
    from habitus.dicom.nifti import load_nifti  # nibabel only when NIfTI is read

    report(Stage.READ, 0.0)
    volume, warnings = load_nifti(path)
    report(Stage.READ, 1.0)
    report(Stage.CHOOSE, 1.0)
    report(Stage.VOLUME, 1.0)
    return LoadedCT(volume, "nifti", None, [], warnings)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _scan_warnings(scan: HeaderScan) -> list[str]:
    warnings = []
    if scan.skipped:
        warnings.append(
            f"skipped {len(scan.skipped)} file(s) that are not DICOM images: "
            f"{_listed(scan.skipped)}"
        )
    if scan.corrupt:
        described = [f"{c.name} ({c.reason})" for c in scan.corrupt]
        warnings.append(
            f"{len(scan.corrupt)} file(s) look like DICOM but could not be read: "
            f"{_listed(described)}"
        )
    return warnings


def _nothing_readable(paths: list[Path], scan: HeaderScan) -> InputRefused:
    where = ", ".join(str(p) for p in paths[:MAX_LISTED])
    if scan.corrupt:
        described = [f"{c.name} ({c.reason})" for c in scan.corrupt]
        return CorruptFile(
            f"expected DICOM CT images in {where}, found {len(scan.corrupt)} unreadable "
            f"DICOM file(s): {_listed(described)}"
            + (f", and {len(scan.skipped)} non-DICOM file(s)" if scan.skipped else "")
        )
    return InputRefused(
        f"expected DICOM CT images in {where}, found none"
        + (
            f" ({len(scan.skipped)} file(s) skipped as not DICOM images: {_listed(scan.skipped)})"
            if scan.skipped
            else " (no files)"
        )
    )


def _corrupt_hint(scan: HeaderScan) -> str:
    if not scan.corrupt:
        return ""
    return (
        f"\n{len(scan.corrupt)} unreadable file(s) may be the missing slices: "
        f"{_listed([c.name for c in scan.corrupt])}"
    )
