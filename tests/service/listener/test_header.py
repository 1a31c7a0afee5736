"""Reading the checked attributes from received bytes: the fast walk agrees with pydicom."""

from __future__ import annotations

import zlib
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from service.listener.header import (
    UndecodableDatasetError,
    _read_with_pydicom,
    _walk,
    read_header,
)
from tests.e2e.instances import ct_slice


def slice_with_sequences() -> Dataset:
    """A CT slice with a sequence of undefined length holding an item of undefined length,
    and one of defined length: the walk must step over both."""
    ds = ct_slice(generate_uid(), generate_uid(), 3, size=32)
    ds.NumberOfFrames = 1
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = generate_uid()
    ref.is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence = Sequence([ref])
    ds["ReferencedImageSequence"].is_undefined_length = True
    code = Dataset()
    code.CodeValue = "T-D0050"
    code.CodingSchemeDesignator = "SRT"
    ds.AnatomicRegionSequence = Sequence([code])
    return ds


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    syntax = UID(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_little_endian = syntax.is_little_endian
    fp.is_implicit_VR = syntax.is_implicit_VR
    if not syntax.is_little_endian:  # pixel values as big-endian words
        ds.PixelData = ds.pixel_array.astype(">i2").tobytes()
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian],
)
def test_the_walk_reads_what_pydicom_reads(transfer_syntax: str) -> None:
    ds = slice_with_sequences()
    data = encode(ds, transfer_syntax)
    syntax = UID(transfer_syntax)

    walked = _walk(memoryview(data), syntax.is_implicit_VR, syntax.is_little_endian)
    assert walked == _read_with_pydicom(BytesIO(data), syntax)
    header = read_header(BytesIO(data), syntax)
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.study_instance_uid == ds.StudyInstanceUID
    assert header.series_instance_uid == ds.SeriesInstanceUID
    assert header.sop_class_uid == ds.SOPClassUID
    assert header.has_pixel_data
    assert walked.numbers[0x00280010] == 32 and walked.numbers[0x00280008] == 1


def test_deflated_and_encapsulated_data_sets() -> None:
    ds = slice_with_sequences()
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = deflater.compress(encode(ds, ExplicitVRLittleEndian)) + deflater.flush()
    header = read_header(BytesIO(deflated), UID(DeflatedExplicitVRLittleEndian))
    assert header.sop_instance_uid == ds.SOPInstanceUID

    ds.PixelData = encapsulate([b"\x01\x02" * 50, b"\x03\x04" * 30])  # fragments, any bytes
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    data = encode(ds, ExplicitVRLittleEndian)
    walked = _walk(memoryview(data), False, True)
    assert walked == _read_with_pydicom(BytesIO(data), UID(RLELossless))
    assert read_header(BytesIO(data), UID(RLELossless)).has_pixel_data


def test_a_deflate_bomb_is_refused_without_being_inflated() -> None:
    # 1 GiB of zeros deflates to about a megabyte; inflating it whole would take 1 GiB.
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(16 * 1024 * 1024)
    bomb = b"".join(deflater.compress(zeros) for _ in range(64)) + deflater.flush()
    assert len(bomb) < 2 * 1024 * 1024
    with pytest.raises(UndecodableDatasetError, match="inflates to more than"):
        read_header(BytesIO(bomb), UID(DeflatedExplicitVRLittleEndian))


def test_a_cut_data_set_is_refused_wherever_it_is_cut() -> None:
    ds = slice_with_sequences()
    data = encode(ds, ExplicitVRLittleEndian)
    pixels_at = data.index(b"\xe0\x7f\x10\x00")
    study_at = data.index(ds.StudyInstanceUID.encode())
    sequence_at = data.index(ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID.encode())
    for cut in (study_at + 3, sequence_at + 5, pixels_at + 12, pixels_at + 40, len(data) - 1):
        with pytest.raises(UndecodableDatasetError):
            read_header(BytesIO(data[:cut]), UID(ExplicitVRLittleEndian))
    # cut inside the Pixel Data element's header: pydicom reads no Pixel Data (then refused
    # as an image without pixels)
    assert not read_header(
        BytesIO(data[: pixels_at + 6]), UID(ExplicitVRLittleEndian)
    ).has_pixel_data


def test_native_pixel_data_shorter_than_the_image_is_refused() -> None:
    ds = slice_with_sequences()
    ds.Rows = 64  # the pixel data holds 32 rows
    with pytest.raises(UndecodableDatasetError, match="Pixel Data holds"):
        read_header(BytesIO(encode(ds, ExplicitVRLittleEndian)), UID(ExplicitVRLittleEndian))


def test_bytes_that_are_not_dicom_are_refused() -> None:
    garbage = b"this is not a DICOM data set at all" * 7
    with pytest.raises(Exception):  # noqa: B017  any error: the handler answers C210
        read_header(BytesIO(garbage), UID(ExplicitVRLittleEndian))


def test_an_instance_without_pixel_data_says_so() -> None:
    ds = slice_with_sequences()
    del ds.PixelData
    header = read_header(BytesIO(encode(ds, ImplicitVRLittleEndian)), UID(ImplicitVRLittleEndian))
    assert not header.has_pixel_data
