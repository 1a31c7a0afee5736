"""The few attributes the C-STORE handler needs, read from the data set as received.

Decoding the whole data set (pynetdicom's ``event.dataset``) copies the pixel data and builds
every element; the handler needs four UIDs, the image size and proof that the bytes are not
cut short. ``_walk`` steps over the received bytes in place, element by element (items of
sequences and encapsulated pixel data by their lengths), keeps the few values needed and
checks that every declared length fits in the bytes actually there: about a tenth of a
millisecond for a CT slice. Anything it does not expect (a VR that is not two capitals, a
switch of encoding inside a sequence) is left to pydicom, which reads the data set leniently
with large values skipped (``SKIP_VALUES_OVER``) and gives the verdict.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

SKIP_VALUES_OVER = 4096
"""Bytes: longer values (pixel data, overlays, private blobs) are only measured."""

UNDEFINED_LENGTH = 0xFFFFFFFF

MAX_INFLATED_BYTES = 64 * 1024 * 1024
"""A deflated data set may inflate to at most this: a 2048 x 2048 16-bit slice is 8 MiB, and
nothing larger is analysed. Without a bound a few kilobytes inflate to gigabytes."""


class UndecodableDatasetError(Exception):
    """The received bytes do not form a data set (truncated, or not DICOM at all)."""


@dataclass(frozen=True)
class InstanceHeader:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    has_pixel_data: bool


def read_header(stream: BytesIO, transfer_syntax: UID) -> InstanceHeader:
    """Read ``stream`` (the data set, no file meta); raises on a broken one.

    Raises UndecodableDatasetError when an element runs past the end of the bytes or native
    pixel data is shorter than the image size calls for; other exceptions from pydicom mean
    the bytes are not a data set at all.
    """
    if transfer_syntax.is_deflated:
        inflated = _inflate(stream.getvalue(), MAX_INFLATED_BYTES)
        return _read(memoryview(inflated), BytesIO(inflated), transfer_syntax)
    with stream.getbuffer() as data:  # the received bytes, not copied
        return _read(data, stream, transfer_syntax)


def _inflate(deflated: bytes, limit: int) -> bytes:
    """Raw-deflate ``deflated``, refusing output beyond ``limit`` bytes before it is made."""
    inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated, limit + 1)
    if len(inflated) > limit:
        raise UndecodableDatasetError(
            f"the deflated data set inflates to more than {limit} bytes ({len(deflated)} "
            "received): refused"
        )
    return inflated


def _read(data: memoryview, stream: BinaryIO, transfer_syntax: UID) -> InstanceHeader:
    try:
        found = _walk(data, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
    except _Unusual:
        found = _read_with_pydicom(stream, transfer_syntax)
    if found.pixel_data_length is not None and not transfer_syntax.is_encapsulated:
        _check_native_pixels(found)
    return InstanceHeader(
        sop_class_uid=found.uids.get(0x00080016, ""),
        sop_instance_uid=found.uids.get(0x00080018, ""),
        study_instance_uid=found.uids.get(0x0020000D, ""),
        series_instance_uid=found.uids.get(0x0020000E, ""),
        has_pixel_data=found.pixel_data_length is not None or found.float_pixel_data,
    )


@dataclass
class _Found:
    uids: dict[int, str] = field(default_factory=dict)  # by tag
    numbers: dict[int, int] = field(default_factory=dict)  # image size, by tag
    pixel_data_length: int | None = None
    float_pixel_data: bool = False


_UID_TAGS = frozenset({0x00080016, 0x00080018, 0x0020000D, 0x0020000E})
_US_TAGS = frozenset({0x00280002, 0x00280010, 0x00280011, 0x00280100})
_NUMBER_OF_FRAMES = 0x00280008  # IS: a number as text
_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = 0x7FE00008
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)


class _Unusual(Exception):
    """Bytes the fast walk does not handle; pydicom reads them instead."""


def _walk(data: memoryview, implicit: bool, little: bool) -> _Found:
    found = _Found()
    end = _elements(data, 0, len(data), implicit, little, found, top=True)
    if end != len(data):
        raise _Unusual
    return found


def _elements(
    data: memoryview, pos: int, end: int, implicit: bool, little: bool, found: _Found, top: bool
) -> int:
    """Step over the elements in data[pos:end]; return where the walk stopped.

    Inside an item of undefined length the walk stops after its Item Delimitation Item.
    """
    tag_format = "<HHI" if little else ">HHI"
    short_format = "<HH2sH" if little else ">HH2sH"
    long_length = "<I" if little else ">I"
    while pos < end:
        if pos + 8 > end:
            raise _Unusual  # a few stray bytes at the end: pydicom judges them
        if implicit:
            group, element, length = struct.unpack_from(tag_format, data, pos)
            vr = b""
            pos += 8
        else:
            group, element, vr, length = struct.unpack_from(short_format, data, pos)
            pos += 8
            if group == 0xFFFE:  # item and delimiter tags carry no VR
                vr = b""
                (length,) = struct.unpack_from(long_length, data, pos - 4)
            elif vr in _LONG_VRS:
                if pos + 4 > end:
                    raise _Unusual
                (length,) = struct.unpack_from(long_length, data, pos)
                pos += 4
            elif not (vr.isalpha() and vr.isupper()):
                raise _Unusual
        tag = group << 16 | element
        if tag == _ITEM_END:
            return pos
        if length == UNDEFINED_LENGTH:
            pos = _items(data, pos, end, implicit or vr == b"UN", little, found)
            if tag == _PIXEL_DATA and top:
                found.pixel_data_length = UNDEFINED_LENGTH
            continue
        if pos + length > end:
            raise UndecodableDatasetError(
                f"element ({group:04X},{element:04X}) declares {length} bytes but the data "
                f"set holds {end - pos}: it is truncated or not DICOM"
            )
        if top:
            _keep(tag, bytes(data[pos : pos + length]) if length <= 64 else b"", found, little)
            if tag == _PIXEL_DATA:
                found.pixel_data_length = length
        pos += length
    return pos


def _items(
    data: memoryview, pos: int, end: int, implicit: bool, little: bool, found: _Found
) -> int:
    """Step over the items of a value of undefined length, up to its Sequence Delimitation."""
    tag_format = "<HHI" if little else ">HHI"
    while pos + 8 <= end:
        group, element, length = struct.unpack_from(tag_format, data, pos)
        pos += 8
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise _Unusual
        if length == UNDEFINED_LENGTH:
            pos = _elements(data, pos, end, implicit, little, found, top=False)
        elif pos + length > end:
            raise UndecodableDatasetError(
                f"an item declares {length} bytes but the data set holds {end - pos}: "
                "it is truncated"
            )
        else:
            pos += length
    raise UndecodableDatasetError("a sequence or pixel data item runs past the end: truncated")


def _keep(tag: int, value: bytes, found: _Found, little: bool) -> None:
    """Keep a top-level value the handler needs (``value``: empty past 64 bytes)."""
    if tag in _UID_TAGS:
        found.uids[tag] = value.decode("ascii", "replace").rstrip("\x00 ")
    elif tag in _US_TAGS and len(value) == 2:
        found.numbers[tag] = int.from_bytes(value, "little" if little else "big")
    elif tag == _NUMBER_OF_FRAMES:
        text = value.decode("ascii", "replace").strip("\x00 ")
        if text:
            try:
                found.numbers[tag] = int(text)
            except ValueError:
                raise _Unusual from None
    elif tag == _FLOAT_PIXEL_DATA:
        found.float_pixel_data = True


def _read_with_pydicom(stream: BinaryIO, transfer_syntax: UID) -> _Found:
    stream.seek(0)
    size = stream.seek(0, 2)
    stream.seek(0)
    ds = read_dataset(
        stream,
        transfer_syntax.is_implicit_VR,
        transfer_syntax.is_little_endian,
        defer_size=SKIP_VALUES_OVER,
    )
    _check_lengths(ds, size)
    found = _Found()
    for tag in _UID_TAGS:
        found.uids[tag] = str(ds.get(tag).value or "") if tag in ds else ""
    for tag in (*_US_TAGS, _NUMBER_OF_FRAMES):
        if tag in ds and ds[tag].value not in (None, ""):
            found.numbers[tag] = int(ds[tag].value)
    pixels = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    if isinstance(pixels, RawDataElement):
        found.pixel_data_length = pixels.length
    found.float_pixel_data = _FLOAT_PIXEL_DATA in ds
    return found


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


def _check_native_pixels(found: _Found) -> None:
    numbers = found.numbers
    expected = (
        (numbers.get(0x00280010) or 0)  # Rows
        * (numbers.get(0x00280011) or 0)  # Columns
        * (numbers.get(0x00280002) or 1)  # Samples per Pixel
        * (numbers.get(_NUMBER_OF_FRAMES) or 1)
        * ((numbers.get(0x00280100) or 16) // 8)  # Bits Allocated
    )
    held = found.pixel_data_length or 0
    if held < expected:
        raise UndecodableDatasetError(
            f"Pixel Data holds {held} bytes; Rows, Columns, Samples per Pixel, "
            f"Number of Frames and Bits Allocated call for {expected}"
        )
