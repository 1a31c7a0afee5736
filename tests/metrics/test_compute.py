"""compute_body_composition end to end: nulls with reasons, the SR list, the preview ranges."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydicom.dataset import Dataset

from habitus.errors import InputRefused
from habitus.metrics import BodyComposition, compute_body_composition
from habitus.metrics.measurements import named_measurements
from habitus.outputs.report import PatientInfo
from habitus.patient import patient_info
from habitus.phantoms.landmark_phantom import Phantom, build_phantom
from habitus.volume import CTVolume, SourceSeries

PATIENT = PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M")
UCUM = {"cm", "cm2", "cm3", "cm2/m2", "cm3/m2", "cm2/kg", "cm3/kg", "[hnsf'U]", "1"}


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return build_phantom(z_top=480.0)


@pytest.fixture(scope="module")
def abdomen(phantom: Phantom) -> Phantom:
    return phantom.crop(180.0, 480.0)


def _compute(phantom: Phantom, patient: PatientInfo, head_ward: bool = True) -> BodyComposition:
    labels, volume = phantom.volume(head_ward=head_ward)
    return compute_body_composition(labels, volume, patient)


def _uid(number: int) -> str:
    return f"1.2.826.0.1.3680043.10.543.{number}"


def _as_dicom(volume: CTVolume, **attributes: object) -> CTVolume:
    """The volume with source headers as a scanner numbers them: from the head down, so that
    InstanceNumber 1 is the most superior slice (k = n - 1 when k runs head-ward)."""
    n = volume.shape[0]
    headers = []
    for k in range(n):
        ds = Dataset()
        ds.InstanceNumber = n - k
        ds.SOPInstanceUID = _uid(n - k)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        headers.append(ds)
    return replace(volume, source=SourceSeries("1.2", "1.2.3", "1.2.4", headers=headers))


def test_scan_stopping_above_the_iliac_crest_has_no_waist(phantom: Phantom) -> None:
    result = _compute(phantom.crop(280.0, 480.0), PatientInfo(height_cm=170, weight_kg=70, sex="F"))
    assert not result.landmarks.iliac_crest.present
    waist = result.waist
    assert not waist.available and "iliac crest" in str(waist.reason)
    assert waist.average_sma_cm2 is None and waist.smi_cm2_m2 is None
    assert "iliac crest" in waist.missing["smi_cm2_m2"]
    assert result.flags.low_smi.value is None and "iliac crest" in str(result.flags.low_smi.reason)
    assert result.regions.waist is None and result.regions.iliac_crest_slice is None
    assert not any(m.group == "waist" for m in named_measurements(result))
    assert "waist_coverage" in [c.name for c in result.quality.checks if c.status == "warn"]
    # L3 lies inside the scan, but only the last-rib count can name it: one count is not
    # enough (habitus.anatomy.vertebrae), so the L3 figures are null with the reason
    assert not result.l3.available and "only the last-rib count" in str(result.l3.reason)
    # the summary gives why the waist is missing once: the flags and the review line refer to it
    summary = "\n".join(result.summary_lines)
    assert summary.count(str(waist.reason)) == 1
    assert "low SMI: unknown (waist not measured)" in summary
    assert result.summary_lines[-1].startswith("review required: ")


def test_missing_height_nulls_only_the_height_indices(abdomen: Phantom) -> None:
    result = _compute(abdomen, PatientInfo(weight_kg=70.0, sex="M"))
    assert result.waist.average_sma_cm2 is not None
    assert result.waist.smi_cm2_m2 is None and "height" in result.waist.missing["smi_cm2_m2"]
    assert result.l3.smi_cm2_m2 is None and "height" in result.l3.missing["smi_cm2_m2"]
    assert result.waist.bfi_cm2_kg is not None
    assert result.flags.low_smi.value is None and "height" in str(result.flags.low_smi.reason)
    assert result.flags.high_bfi.value is not None


def test_missing_weight_nulls_the_fat_index(abdomen: Phantom) -> None:
    result = _compute(abdomen, PatientInfo(height_cm=175.0, sex="M"))
    assert result.waist.bfi_cm2_kg is None and "weight" in result.waist.missing["bfi_cm2_kg"]
    assert result.flags.high_bfi.value is None and "weight" in str(result.flags.high_bfi.reason)
    assert result.waist.smi_cm2_m2 is not None


def test_flags_follow_the_patients_sex(abdomen: Phantom) -> None:
    """The same scan (SMI about 31 cm2/m2 at 1.75 m) is low for a man and a woman, and the
    cut-off applied is written into the result."""
    men = _compute(abdomen, PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M"))
    women = _compute(abdomen, PatientInfo(height_cm=175.0, weight_kg=70.0, sex="F"))
    assert men.waist.smi_cm2_m2 == women.waist.smi_cm2_m2
    assert men.flags.low_smi.cutoff == 40.0 and women.flags.low_smi.cutoff == 35.0
    smi = men.waist.smi_cm2_m2
    assert smi is not None
    assert men.flags.low_smi.value is (smi < 40.0)
    assert women.flags.low_smi.value is (smi < 35.0)
    bfi = men.waist.bfi_cm2_kg
    assert bfi is not None
    assert men.flags.high_bfi.value is (bfi > 4.7) and women.flags.high_bfi.value is (bfi > 5.8)


def test_flags_show_the_index_they_were_decided_on(abdomen: Phantom) -> None:
    """At 67.18 kg the waist BFI is 4.704 cm2/kg: high for a man (above 4.7). The flag and the
    summary show 4.704, not a value rounded again to 4.7 (which read "4.7 > 4.7")."""
    high = _compute(abdomen, PatientInfo(height_cm=175.0, weight_kg=67.18, sex="M"))
    assert high.waist.bfi_cm2_kg == 4.704
    assert high.flags.high_bfi.value is True and high.flags.high_bfi.measured == 4.704
    assert high.flags.low_smi.measured == high.waist.smi_cm2_m2
    assert "high BFI: yes (4.704 > 4.7 cm2/kg for sex M)" in high.summary_lines
    assert any("BFI 4.704 cm²/kg" in line for line in high.summary_lines)
    # a flag that is not raised states the rule, not a comparison that does not hold
    low = _compute(abdomen, PatientInfo(height_cm=130.0, weight_kg=75.0, sex="M"))
    bfi, smi = low.waist.bfi_cm2_kg, low.waist.smi_cm2_m2
    assert bfi is not None and bfi < 4.7 and smi is not None and smi > 40.0
    assert low.flags.high_bfi.measured == bfi and low.flags.low_smi.measured == smi
    assert f"high BFI: no ({bfi}; high if > 4.7 cm2/kg for sex M)" in low.summary_lines
    assert f"low SMI: no ({smi}; low if < 40.0 cm2/m2 for sex M)" in low.summary_lines
    assert not any(f"({bfi} >" in line or f"({smi} <" in line for line in low.summary_lines)


def test_implausible_height_and_weight_give_their_own_reason(abdomen: Phantom) -> None:
    """PatientSize 175 is centimetres typed into a metres field; the indices say so instead
    of asking for a PatientSize that is recorded."""
    labels, volume = abdomen.volume()
    volume = _as_dicom(volume, PatientSize="175", PatientWeight="7000", PatientSex="M")
    patient = patient_info(volume)
    result = compute_body_composition(labels, volume, patient)
    height = "PatientSize 175 (m) read as 17500 cm is outside the plausible 100–230 cm"
    weight = "PatientWeight 7000 (kg) is outside the plausible 25–300 kg"
    for reason in (
        result.waist.missing["smi_cm2_m2"],
        result.l3.missing["smi_cm2_m2"],
        str(result.flags.low_smi.reason),
    ):
        assert height in reason and "--height" in reason
        assert "record PatientSize" not in reason
    for reason in (result.waist.missing["bfi_cm2_kg"], str(result.flags.high_bfi.reason)):
        assert weight in reason and "--weight" in reason
        assert "record PatientWeight" not in reason
    assert any(height in line for line in result.summary_lines)
    # a value given by the caller in the wrong unit is named as the caller's
    given = compute_body_composition(labels, volume, patient_info(volume, height_cm=1.75))
    reason = given.waist.missing["smi_cm2_m2"]
    assert "height given as 1.75 (--height or height_cm, in cm)" in reason
    assert "PatientSize" not in reason


def test_slices_are_named_by_their_source_instances(abdomen: Phantom) -> None:
    """The report keeps the volume's slice indices and adds each slice's InstanceNumber and
    SOPInstanceUID; the summary names the instances a viewer shows, never the index."""
    labels, volume = abdomen.volume()
    n = volume.shape[0]
    result = compute_body_composition(labels, _as_dicom(volume), PATIENT)
    l3, waist = result.l3, result.waist.range
    assert l3.slice_index is not None and l3.instance is not None and waist is not None
    assert l3.instance.instance_number == n - l3.slice_index
    assert l3.instance.sop_instance_uid == _uid(n - l3.slice_index)
    assert l3.instance.z_mm == l3.z_mm
    assert waist.first_instance is not None and waist.last_instance is not None
    first, last = waist.first_instance, waist.last_instance
    assert (first.instance_number, last.instance_number) == (
        n - waist.first_slice,
        n - waist.last_slice,
    )
    assert first.sop_instance_uid == _uid(n - waist.first_slice)
    assert (first.z_mm, last.z_mm) == waist.z_mm  # k runs head-ward here: first is inferior
    assert result.regions.waist == waist
    top, bottom = last.instance_number, first.instance_number  # numbered from the head down
    assert top is not None and bottom is not None and top < bottom
    assert result.summary_lines[0].startswith(
        f"waist (instances {top}-{bottom}, z {last.z_mm:.1f} to {first.z_mm:.1f} mm, "
    )
    assert result.summary_lines[1].startswith(
        f"L3 (instance {l3.instance.instance_number}, z {l3.z_mm:.1f} mm): "
    )
    assert "slice" not in result.summary_lines[1]
    torso = result.torso.range
    assert torso is not None and torso.first_instance is not None
    assert result.summary_lines[2].startswith("torso (instances ")
    dumped = result.model_dump(mode="json")
    assert dumped["l3"]["slice_index"] == l3.slice_index
    assert dumped["waist"]["range"]["first_slice"] == waist.first_slice


def test_nifti_slices_are_named_by_z_only(abdomen: Phantom) -> None:
    result = _compute(abdomen, PATIENT)
    assert result.l3.instance is None and result.l3.z_mm is not None
    assert result.waist.range is not None and result.waist.range.first_instance is None
    inferior, superior = result.waist.range.z_mm
    assert result.summary_lines[0].startswith(f"waist (z {inferior:.1f} to {superior:.1f} mm, ")
    assert result.summary_lines[1].startswith(f"L3 (z {result.l3.z_mm:.1f} mm): ")


def test_result_does_not_depend_on_slice_order(abdomen: Phantom) -> None:
    patient = PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M")
    up, down = _compute(abdomen, patient, True), _compute(abdomen, patient, False)
    assert up.waist.model_dump(exclude={"range"}) == down.waist.model_dump(exclude={"range"})
    assert up.l3.sma_cm2 == down.l3.sma_cm2
    n = abdomen.labels.shape[0]
    assert up.l3.slice_index is not None and down.l3.slice_index is not None
    assert down.l3.slice_index == n - 1 - up.l3.slice_index


def test_measurements_for_the_sr(abdomen: Phantom) -> None:
    result = _compute(abdomen, PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M"))
    rows = named_measurements(result)
    keys = [m.key for m in rows]
    assert len(keys) == len(set(keys))
    assert {"waist.average_sma", "waist.smi", "l3.sma", "l3.vat_sat_ratio"} <= set(keys)
    assert "torso.smi" not in keys  # the torso is not fully covered
    assert {m.unit for m in rows} <= UCUM
    by_key = {m.key: m for m in rows}
    assert by_key["waist.average_sma"].value == result.waist.average_sma_cm2
    assert result.waist.range is not None
    assert by_key["waist.smi"].slices == (
        result.waist.range.first_slice,
        result.waist.range.last_slice,
    )
    assert by_key["l3.sma"].slices == (result.l3.slice_index, result.l3.slice_index)


def test_regions_for_the_preview_match_the_measurements(abdomen: Phantom) -> None:
    result = _compute(abdomen, PatientInfo())
    assert result.regions.waist == result.waist.range
    assert result.regions.l3_slice == result.l3.slice_index
    assert result.regions.torso == result.torso.range
    assert result.regions.last_rib_slice == int(result.landmarks.last_rib.slice_index or -1)


def test_result_round_trips_through_json(abdomen: Phantom) -> None:
    result = _compute(abdomen, PatientInfo(height_cm=175.0, weight_kg=70.0, sex="M"))
    dumped = result.model_dump(mode="json")
    assert BodyComposition.model_validate(dumped) == result
    assert dumped["summary_lines"] and any("waist" in line for line in dumped["summary_lines"])


def test_label_map_of_another_shape_is_refused(abdomen: Phantom) -> None:
    labels, volume = abdomen.volume()
    with pytest.raises(InputRefused, match="label map"):
        compute_body_composition(np.ascontiguousarray(labels[1:]), volume, PatientInfo())


def test_empty_label_map_reports_everything_missing(abdomen: Phantom) -> None:
    labels, volume = abdomen.volume()
    result = compute_body_composition(np.zeros_like(labels), volume, PatientInfo())
    assert not any(m.present for m in result.landmarks.all())
    assert not result.waist.available and not result.l3.available
    assert result.torso.range is None
    assert result.quality.review_required
    assert named_measurements(result) == []


@pytest.mark.parametrize("slices", [1, 3])
def test_a_few_slices_give_absent_landmarks_not_errors(phantom: Phantom, slices: int) -> None:
    few = phantom.crop(300.0, 300.0 + 3.0 * (slices - 1))
    labels, volume = few.volume()
    assert labels.shape[0] == slices
    result = compute_body_composition(labels, volume, PatientInfo(height_cm=170.0))
    assert all(not m.present and m.reason for m in result.landmarks.all())
    assert result.torso.range is not None and result.torso.range.slices == slices
    assert not result.torso.complete and result.torso.smi_cm3_m2 is None
