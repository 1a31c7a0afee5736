"""Anthropometrics: the caller's values win, the header's are converted, nonsense is dropped."""

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from habitus.patient import patient_info
from habitus.volume import CTVolume, Geometry, SourceSeries


def volume_with_header(**attributes: object) -> CTVolume:
    header = Dataset()
    for keyword, value in attributes.items():
        setattr(header, keyword, value)
    source = SourceSeries("1.2", "1.2.3", "1.2.4", headers=[header])
    return CTVolume(
        hu=np.zeros((1, 1, 1), np.int16), geometry=Geometry((1, 1, 1), (0, 0, 0)), source=source
    )


def test_header_values_are_converted_and_attributed() -> None:
    info = patient_info(volume_with_header(PatientSize=1.72, PatientWeight=68, PatientSex="F"))
    assert (info.height_cm, info.weight_kg, info.sex) == (172.0, 68.0, "F")
    assert info.source == {
        "height_cm": "dicom PatientSize",
        "weight_kg": "dicom PatientWeight",
        "sex": "dicom PatientSex",
    }


def test_caller_values_win_over_the_header() -> None:
    volume = volume_with_header(PatientSize=1.72, PatientWeight=68, PatientSex="F")
    info = patient_info(volume, height_cm=180.0, weight_kg=90.0, sex="M")
    assert (info.height_cm, info.weight_kg, info.sex) == (180.0, 90.0, "M")
    assert set(info.source.values()) == {"caller"}


def test_implausible_or_missing_values_are_null_with_a_warning() -> None:
    info = patient_info(volume_with_header(PatientSize=172, PatientSex="O"))  # cm, not metres
    assert info.height_cm is None and info.weight_kg is None and info.sex is None
    assert info.source == {}
    assert any("PatientSize 172.0 (m) read as 17200 cm" in w for w in info.warnings)


def test_an_implausible_header_value_is_named_with_its_keyword_and_raw_value() -> None:
    info = patient_info(volume_with_header(PatientSize="175", PatientWeight="70000"))
    height = "PatientSize 175 (m) read as 17500 cm is outside the plausible 100–230 cm"
    weight = "PatientWeight 70000 (kg) is outside the plausible 25–300 kg"
    assert info.missing["height_cm"].startswith(f"height unknown: {height}; ")
    assert "--height" in info.missing["height_cm"]
    assert info.missing["weight_kg"].startswith(f"weight unknown: {weight}; ")
    assert "--weight" in info.missing["weight_kg"]
    assert [w.split(" and was ignored")[0] for w in info.warnings] == [height, weight]


def test_an_implausible_caller_value_is_named_as_the_callers() -> None:
    volume = volume_with_header(PatientSize=1.72, PatientWeight=68)
    info = patient_info(volume, height_cm=1.75, weight_kg=68000.0)  # metres, grams
    assert info.height_cm is None and info.weight_kg is None and info.source == {}
    assert info.missing["height_cm"].startswith(
        "height unknown: the height given as 1.75 (--height or height_cm, in cm) is outside "
        "the plausible 100–230 cm; give it in cm"
    )
    assert "weight given as 68000 (--weight or weight_kg, in kg)" in info.missing["weight_kg"]
    assert len(info.warnings) == 2 and "1.75" in info.warnings[0]


def test_absent_values_say_where_they_were_looked_for() -> None:
    volume = volume_with_header(PatientWeight=0)
    assert volume.source is not None
    # as read from a file: pydicom keeps a DS it cannot convert as the string written
    volume.source.headers[0][0x00101020] = RawDataElement(
        Tag(0x00101020), "DS", 4, b"abc ", 0, False, True
    )
    info = patient_info(volume)
    assert info.missing["height_cm"].startswith("height unknown: PatientSize 'abc' is not a number")
    assert info.warnings == [
        "PatientSize 'abc' is not a number and was ignored; "
        + ("give the height in cm (--height or height_cm) or correct it")
    ]
    assert "PatientWeight is 0 in the DICOM header" in info.missing["weight_kg"]
    missing = patient_info(volume_with_header())
    assert "PatientSize is not in the DICOM header" in missing.missing["height_cm"]
    assert missing.warnings == []
    nifti = CTVolume(hu=np.zeros((1, 1, 1), np.int16), geometry=Geometry((1, 1, 1), (0, 0, 0)))
    assert "NIfTI" in patient_info(nifti).missing["weight_kg"]
