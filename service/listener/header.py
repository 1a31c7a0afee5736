"""The few attributes the C-STORE handler needs, read from the data set as received.

Decoding the whole data set (pynetdicom's ``event.dataset``) copies the pixel data and builds
every element; the handler needs four UIDs, the image size and proof that the bytes are not
cut short. Here pydicom walks the top-level elements of the received stream in place: values
longer than ``SKIP_VALUES_OVER`` bytes are skipped, never copied, and every element's declared
length is checked against the bytes actually there.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

SKIP_VALUES_OVER = 4096
"""Bytes: longer values (pixel data, overlays, private blobs) are only measured."""

UNDEFINED_LENGTH = 0xFFFFFFFF


class UndecodableDatasetError(Exception):
    """The received bytes do not form a data set (truncated, or not DICOM at all)."""


@dataclass(frozen=True)
class InstanceHeader:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    has_pixel_data: bool


def read_header(stream: BinaryIO, transfer_syntax: UID) -> InstanceHeader:
    """Read ``stream`` (the data set, no file meta) from its start; raises on a broken one.

    Raises UndecodableDatasetError when an element runs past the end of the bytes or native
    pixel data is shorter than the image size calls for; other exceptions from pydicom mean
    the bytes are not a data set at all.
    """
    stream.seek(0)
    if transfer_syntax.is_deflated:
        stream = BytesIO(zlib.decompress(stream.read(), -zlib.MAX_WBITS))
    size = stream.seek(0, 2)
    stream.seek(0)
    ds = read_dataset(
        stream,
        transfer_syntax.is_implicit_VR,
        transfer_syntax.is_little_endian,
        defer_size=SKIP_VALUES_OVER,
    )
    _check_lengths(ds, size)
    pixels = ds.get_item(0x7FE00010, keep_deferred=True)
    if isinstance(pixels, RawDataElement) and not transfer_syntax.is_encapsulated:
        _check_native_pixels(ds, pixels.length)
    return InstanceHeader(
        sop_class_uid=_text(ds, "SOPClassUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        has_pixel_data=pixels is not None or 0x7FE00008 in ds,  # PixelData, FloatPixelData
    )


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def _check_lengths(ds: Dataset, size: int) -> None:
    """pydicom reads leniently: a value that runs past the end of the stream comes back short
    (or, when skipped, ends beyond it) and garbage comes back as one odd element."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)  # raw: no conversion, no reading
        if not isinstance(raw, RawDataElement) or raw.length == UNDEFINED_LENGTH:
            continue
        if raw.value is None:  # skipped: its bytes must lie within the stream
            found = min(raw.length, max(size - raw.value_tell, 0))
        else:
            found = len(raw.value)
        if found != raw.length:
            raise UndecodableDatasetError(
                f"element {raw.tag} declares {raw.length} bytes but the data set holds "
                f"{found}: it is truncated or not DICOM"
            )


def _check_native_pixels(ds: Dataset, found: int) -> None:
    expected = (
        int(ds.get("Rows", 0) or 0)
        * int(ds.get("Columns", 0) or 0)
        * int(ds.get("SamplesPerPixel", 1) or 1)
        * int(ds.get("NumberOfFrames", 1) or 1)
        * (int(ds.get("BitsAllocated", 16) or 16) // 8)
    )
    if found < expected:
        raise UndecodableDatasetError(
            f"Pixel Data holds {found} bytes; Rows, Columns, Samples per Pixel, "
            f"Number of Frames and Bits Allocated call for {expected}"
        )
