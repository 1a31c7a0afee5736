"""The body-composition analytics through the whole pipeline: report, SR and preview.

The scan is the anatomy phantom (known last rib, iliac crest and L3) written as DICOM; a
segmenter that returns the phantom's own labels isolates the analytics from segmentation
quality.
"""

import highdicom as hd
import pytest

from habitus.phantoms.landmark_phantom import CREST_Z, build_phantom
from habitus.phantoms.write_dicom import write_series
from habitus.pipeline import AnalysisOptions, AnalysisResult, analyze
from tests.outputs.conftest import dciodvfy_errors
from tests.segment.known_labels import KnownLabels


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory: pytest.TempPathFactory) -> AnalysisResult:
    phantom = build_phantom(z_top=520.0, width_px=104).crop(150.0, 500.0)
    labels, volume = phantom.volume(head_ward=True)
    root = tmp_path_factory.mktemp("phantom")
    write_series(root / "ct", volume.hu, volume.geometry, series_description="Phantom torso")
    options = AnalysisOptions(height_cm=170.0, weight_kg=70.0, sex="M")
    return analyze(root / "ct", root / "out", options, segmenter=KnownLabels(labels))


def test_report_has_waist_l3_indices_and_flags(phantom_run: AnalysisResult) -> None:
    body = phantom_run.report.body_composition
    assert body is not None
    assert body.waist.available, body.waist.reason
    assert body.landmarks.iliac_crest.present
    assert body.landmarks.iliac_crest.z_mm == pytest.approx(CREST_Z, abs=6.0)
    assert body.waist.smi_cm2_m2 == pytest.approx(body.waist.average_sma_cm2 / 1.70**2, rel=1e-3)
    assert body.waist.bfi_cm2_kg == pytest.approx(body.waist.average_bfa_cm2 / 70.0, rel=1e-3)
    assert body.flags.low_smi.value == (body.waist.smi_cm2_m2 < 40.0)
    assert body.flags.high_bfi.cutoff == 4.7


def test_sr_carries_the_waist_measurements_with_slice_references(
    phantom_run: AnalysisResult,
) -> None:
    body = phantom_run.report.body_composition
    assert body is not None and body.waist.range is not None
    sr = hd.sr.srread(phantom_run.files["sr"])
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    waist = groups["Waist (last rib to iliac crest)"]
    (smi,) = [m for m in waist.get_measurements() if m.name.value == "WAIST.SMI"]
    assert smi.value == pytest.approx(body.waist.smi_cm2_m2)
    assert smi.unit.value == "cm2/m2"
    # it references the first and last source slices of the waist
    headers = {ds.SOPInstanceUID: k for k, ds in enumerate(phantom_volume_headers(phantom_run))}
    referenced = sorted(headers[r.referenced_sop_instance_uid] for r in smi.referenced_images)
    assert referenced == [body.waist.range.first_slice, body.waist.range.last_slice]
    flags = {e.name.value: e.value.meaning for e in waist.get_qualitative_evaluations()}
    assert set(flags) == {"LOWSMI", "HIGHBFI"}
    assert dciodvfy_errors(phantom_run.files["sr"]) == []


def phantom_volume_headers(result: AnalysisResult) -> list:
    from habitus.dicom import load_ct

    volume = load_ct(result.out_dir.parent / "ct").volume
    assert volume.source is not None
    return volume.source.headers


def test_preview_and_cli_summary_mention_the_waist(phantom_run: AnalysisResult) -> None:
    body = phantom_run.report.body_composition
    assert body is not None
    assert any(line.startswith("waist (instances ") for line in body.summary_lines)
    assert phantom_run.files["preview"].stat().st_size > 10_000


def test_l3_and_waist_name_their_source_instances(phantom_run: AnalysisResult) -> None:
    """InstanceNumber and SOPInstanceUID as written in the DICOM files, beside the index."""
    body = phantom_run.report.body_composition
    assert body is not None and body.waist.range is not None
    headers = phantom_volume_headers(phantom_run)
    l3, waist = body.l3, body.waist.range
    assert l3.slice_index is not None and l3.instance is not None
    assert l3.instance.instance_number == int(headers[l3.slice_index].InstanceNumber)
    assert l3.instance.sop_instance_uid == headers[l3.slice_index].SOPInstanceUID
    for k, instance in (
        (waist.first_slice, waist.first_instance),
        (waist.last_slice, waist.last_instance),
    ):
        assert instance is not None
        assert instance.instance_number == int(headers[k].InstanceNumber)
        assert instance.sop_instance_uid == headers[k].SOPInstanceUID
    assert f"L3 (instance {l3.instance.instance_number}, z {l3.z_mm:.1f} mm)" in "\n".join(
        body.summary_lines
    )
