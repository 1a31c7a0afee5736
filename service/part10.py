"""Recognise a DICOM Part 10 file by its first bytes, before anything parses the dataset.

An upload is DICOM when it has the 128-byte preamble, the "DICM" prefix and a File Meta
Information group that starts with its group length and names the SOP class, the SOP
instance and the transfer syntax. Only that group is read (at most ``MAX_META_BYTES``), so
a file that is not DICOM costs a read of 144 bytes however large it is, and the SOP class
and instance of one that is are known without parsing the dataset.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom

PREAMBLE = 128
PREFIX = b"DICM"
# (0002,0000) UL 4: the group length, the first element of every file meta group
GROUP_LENGTH_HEADER = struct.pack("<HH", 0x0002, 0x0000) + b"UL" + struct.pack("<H", 4)
HEAD = PREAMBLE + len(PREFIX) + len(GROUP_LENGTH_HEADER) + 4
MAX_META_BYTES = 64 * 1024  # real file meta groups are a few hundred bytes


class NotPart10(ValueError):
    """The file is not a DICOM Part 10 file; the message says what was found."""


@dataclass(frozen=True)
class Part10Meta:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str


def read_part10_meta(path: Path) -> Part10Meta:
    """The file meta of a Part 10 file, or NotPart10 saying why the file is not one."""
    with path.open("rb") as f:
        head = f.read(HEAD)
        if len(head) < PREAMBLE + len(PREFIX) or head[PREAMBLE : PREAMBLE + 4] != PREFIX:
            raise NotPart10(
                "not a DICOM file: expected a 128-byte preamble followed by 'DICM'; "
                f"found {_describe(head)}"
            )
        if len(head) < HEAD or head[PREAMBLE + 4 : HEAD - 4] != GROUP_LENGTH_HEADER:
            raise NotPart10(
                "not a readable DICOM file: the file meta information does not start with "
                "its group length (0002,0000)"
            )
        (length,) = struct.unpack_from("<I", head, HEAD - 4)
        if length > MAX_META_BYTES:
            raise NotPart10(
                f"not a readable DICOM file: its file meta information declares {length} "
                f"bytes; at most {MAX_META_BYTES} are accepted"
            )
        group = f.read(length)
    if len(group) < length:
        raise NotPart10("not a readable DICOM file: its file meta information is truncated")
    try:  # the preamble and the meta group alone: an empty dataset follows
        meta = pydicom.dcmread(io.BytesIO(head + group)).file_meta
    except Exception as exc:  # whatever the parser raises on a damaged meta group
        raise NotPart10(f"not a readable DICOM file: bad file meta information ({exc})") from exc
    values = [
        str(meta.get(keyword, "") or "").strip()
        for keyword in (
            "MediaStorageSOPClassUID",
            "MediaStorageSOPInstanceUID",
            "TransferSyntaxUID",
        )
    ]
    if not all(values):
        raise NotPart10(
            "not a readable DICOM file: its file meta information must name the SOP class, "
            "the SOP instance and the transfer syntax"
        )
    return Part10Meta(*values)


def _describe(head: bytes) -> str:
    if len(head) < PREAMBLE + len(PREFIX):
        return f"only {len(head)} bytes"
    return f"{head[PREAMBLE : PREAMBLE + 4]!r} at byte 128"
