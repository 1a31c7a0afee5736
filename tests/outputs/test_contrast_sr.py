"""The contrast phase group of the SR: coded phase values, unknown phases, evidence-free groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.metrics import compute_body_composition
from habitus.metrics.contrast import UNKNOWN, ContrastAssessment, ContrastEvidence, ContrastPhase
from habitus.outputs.codes import CONTRAST_PHASES, HABITUS_SCHEME
from habitus.outputs.presentation import CONTRAST_GROUP_LABEL, sr_groups
from habitus.outputs.report import PatientInfo, Report
from habitus.outputs.seg import build_segmentation
from habitus.outputs.sr import build_sr
from habitus.segment.base import ModelInfo
from habitus.volume import CTVolume
from tests.outputs.conftest import content_items, dciodvfy_errors


def test_every_phase_has_a_code_that_fits_a_code_value() -> None:
    for phase in [*ContrastPhase, UNKNOWN]:
        code = CONTRAST_PHASES[str(phase)]
        assert len(code.value) <= 16  # CodeValue is SH: longer values become LongCodeValue
    assert CONTRAST_PHASES["unknown"].scheme_designator == "SCT"
    assert CONTRAST_PHASES["arterial"].scheme_designator == HABITUS_SCHEME


@pytest.mark.parametrize(
    ("assessment", "code", "sites"),
    [
        (
            ContrastAssessment(
                phase=UNKNOWN,
                enhanced=None,
                reason="neither the aorta nor the liver was found",
                evidence=[
                    ContrastEvidence(structure="aorta", found=False, detail="no spine"),
                    ContrastEvidence(structure="liver", found=False, detail="no spine"),
                ],
            ),
            "261665006",
            0,
        ),
        (
            ContrastAssessment(
                phase=ContrastPhase.DELAYED,
                enhanced=True,
                reason="aorta 120 HU, liver 96 HU",
                evidence=[
                    ContrastEvidence(
                        structure="aorta", found=True, median_hu=120.0, slices=(0, 2),
                        z_mm=(0.0, 4.0), measured_slices=3, detail="lumen",
                    ),
                    ContrastEvidence(
                        structure="liver", found=True, median_hu=96.0, slices=(1, 1),
                        z_mm=(2.0, 2.0), measured_slices=1, detail="organ",
                    ),
                ],
            ),
            "DELAYED",
            2,
        ),
    ],
)  # fmt: skip
def test_phase_group_is_valid_with_and_without_evidence(
    synthetic_volume: CTVolume,
    synthetic_label_map: NDArray[np.uint8],
    model: ModelInfo,
    report_for: object,
    tmp_path: Path,
    assessment: ContrastAssessment,
    code: str,
    sites: int,
) -> None:
    assert callable(report_for)
    body = compute_body_composition(synthetic_label_map, synthetic_volume, PatientInfo())
    body = body.model_copy(update={"contrast": assessment})
    report: Report = report_for(synthetic_volume, synthetic_label_map)
    report = report.model_copy(update={"body_composition": body})
    seg = build_segmentation(synthetic_label_map, synthetic_volume, model, created=report.created)
    groups = sr_groups(body, synthetic_volume, model)
    sr = build_sr(report, seg, synthetic_volume, model, extra_groups=groups)
    [group] = [
        g
        for g in content_items(sr, "Measurement Group")
        if any(getattr(i, "TextValue", "") == CONTRAST_GROUP_LABEL for i in g.ContentSequence)
    ]
    [phase] = content_items(group, "Contrast Phase")
    assert phase.ConceptCodeSequence[0].CodeValue == code
    assert len(content_items(group, "Attenuation Coefficient")) == sites
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
