"""analyze(): the one entry point that the CLI and the worker both call.

input -> series choice -> HU volume -> segmentation -> metrics -> outputs, each stage timed
and reported through a progress callback.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from habitus import PIPELINE_VERSION, __version__
from habitus.dicom import LoadedCT, SeriesRules, load_ct
from habitus.metrics import compute_body_composition
from habitus.metrics.class_volumes import class_measurements
from habitus.outputs.pet_sr import evidence as pet_evidence
from habitus.outputs.pet_sr import pet_sr_groups
from habitus.outputs.presentation import preview_options, sr_groups
from habitus.outputs.report import (
    InputInfo,
    ModelSummary,
    Report,
    SeriesInfo,
)
from habitus.outputs.writer import write_outputs
from habitus.patient import patient_info
from habitus.pet.analysis import analyze_pet
from habitus.pet.schema import PetSection
from habitus.progress import ProgressCallback, Stage, ignore_progress
from habitus.segment import ModelInfo, Segmenter
from habitus.segment.loader import load_segmenter


@dataclass(frozen=True)
class AnalysisOptions:
    height_cm: float | None = None  # override the DICOM header's PatientSize
    weight_kg: float | None = None  # override PatientWeight
    sex: Literal["M", "F"] | None = None  # override PatientSex
    device: Literal["auto", "cpu", "cuda"] = "auto"
    segmenter: Literal["auto", "model", "rules"] = "auto"
    series_rules: SeriesRules | None = None


@dataclass
class AnalysisResult:
    report: Report
    out_dir: Path
    files: dict[str, Path]  # "seg" | "sr" | "report" | "preview" -> path
    labels: NDArray[np.uint8] = field(repr=False)


class _StageClock:
    """Forwards progress and times each stage from the progress events themselves.

    A stage starts at its first event and ends when another stage starts (or at ``stop``),
    so stages run inside ``load_ct`` are timed the same way as those run here.
    """

    def __init__(self, forward: ProgressCallback) -> None:
        self._forward = forward
        self._current: Stage | None = None
        self._since = 0.0
        self.timings: dict[str, float] = {}

    def __call__(self, stage: Stage, fraction: float) -> None:
        if stage != self._current:
            self.stop()
            self._current, self._since = stage, time.perf_counter()
        self._forward(stage, fraction)

    def stop(self) -> None:
        if self._current is not None:
            elapsed = time.perf_counter() - self._since
            key = self._current.value
            self.timings[key] = round(self.timings.get(key, 0.0) + elapsed, 3)
            self._current = None


def analyze(
    source: Path | Sequence[Path],
    out_dir: Path,
    options: AnalysisOptions | None = None,
    progress: ProgressCallback | None = None,
    segmenter: Segmenter | None = None,
) -> AnalysisResult:
    """Analyse one CT study (a DICOM folder, zip or files, or a NIfTI volume).

    ``segmenter`` lets a long-lived process (a worker) reuse a loaded model; otherwise one is
    loaded according to ``options.segmenter``. Bad input raises a HabitusError subclass whose
    message says what was expected and what was found.
    """
    options = options or AnalysisOptions()
    clock = _StageClock(progress or ignore_progress)

    loaded = load_ct(source, rules=options.series_rules, progress=clock)
    volume = loaded.volume

    clock(Stage.SEGMENT, 0.0)
    if segmenter is None:
        segmenter = load_segmenter(options.segmenter, device=options.device)
    labels = segmenter.segment(volume, progress=lambda f: clock(Stage.SEGMENT, f))

    clock(Stage.METRICS, 0.0)
    patient = patient_info(
        volume, height_cm=options.height_cm, weight_kg=options.weight_kg, sex=options.sex
    )
    classes = class_measurements(labels, volume.hu, volume.geometry)
    body = compute_body_composition(labels, volume, patient)
    pet_analysis = analyze_pet(source, volume, labels, loaded.others, patient, body.regions)
    pet = pet_analysis.section

    clock(Stage.OUTPUTS, 0.0)
    report = Report(
        habitus_version=__version__,
        pipeline_version=PIPELINE_VERSION,
        created=datetime.now(UTC),
        input=_input_info(source, loaded),
        model=_model_summary(segmenter.info),
        patient=patient,
        classes=classes,
        body_composition=body,
        pet=pet,
        timings_s=clock.timings,
        warnings=[
            *loaded.warnings,
            *volume.notes,
            *patient.warnings,
            *body.quality.review_reasons,
            *_pet_notes(pet),
            *_device_notes(options.device, segmenter.info),
        ],
    )
    files = write_outputs(
        out_dir,
        report=report,
        labels=labels,
        volume=volume,
        model=segmenter.info,
        preview=preview_options(body),
        sr_groups=[
            *sr_groups(body, volume, segmenter.info),
            *pet_sr_groups(pet, pet_analysis.headers, volume, segmenter.info),
        ]
        if volume.source
        else (),
        sr_evidence=pet_evidence(pet, pet_analysis.headers),
        pet=pet_analysis.suv,
    )
    clock(Stage.OUTPUTS, 1.0)
    clock.stop()
    return AnalysisResult(report=report, out_dir=out_dir, files=files, labels=labels)


def _input_info(source: Path | Sequence[Path], loaded: LoadedCT) -> InputInfo:
    volume = loaded.volume
    shown = str(source) if isinstance(source, Path | str) else f"{len(source)} files"
    return InputInfo(
        source=shown,
        format=loaded.format,
        chosen_series=SeriesInfo(**asdict(loaded.chosen)) if loaded.chosen else None,
        other_series=[SeriesInfo(**asdict(v)) for v in loaded.others],
        shape=volume.shape,
        spacing_mm=volume.geometry.spacing,
        slice_thickness_mm=volume.slice_thickness_mm,
    )


def _pet_notes(pet: PetSection) -> list[str]:
    """Say so when a study's PET could not be measured; a study without PET needs no word."""
    if pet.found and not pet.analysed:
        return [f"PET uptake refused ({pet.refusal}): {pet.reason}"]
    return [*pet.warnings]


def _device_notes(asked: str, info: ModelInfo) -> list[str]:
    """Say so when the analysis did not run where it was asked to."""
    if asked == "cuda" and info.device != "cuda":
        why = (
            "the rule-based segmenter runs on the CPU only"
            if info.kind == "rules"
            else "no GPU was available to the model"
        )
        return [f"device cuda (a GPU) was asked for, but {info.model_id} ran on the CPU: {why}"]
    return []


def _model_summary(info: ModelInfo) -> ModelSummary:
    return ModelSummary(
        model_id=info.model_id,
        version=info.version,
        kind=info.kind,
        device=info.device,
        sha256=info.sha256,
    )
