"""Anthropometrics: the caller's values win, the header's are converted, nonsense is dropped."""

import numpy as np
from pydicom.dataset import Dataset

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
    assert any("height_cm 17200.0" in w for w in info.warnings)
