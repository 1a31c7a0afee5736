"""Read the headers of every input file, stopping before the pixel data.

Each file ends up in exactly one bucket: a DICOM instance (its header kept), skipped (not a
DICOM image: DICOMDIR, text, images of other formats) or corrupt (it looks like DICOM but does
not parse). A corrupt file is not fatal here: only the series chosen later must be complete.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pydicom
from pydicom.dataset import Dataset, FileDataset

from habitus.dicom.sources import FileSource

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR
PREAMBLE_LENGTH = 128
# Groups a DICOM stream written without preamble plausibly starts with.
RAW_DATASET_FIRST_GROUPS = frozenset({0x0002, 0x0008})


@dataclass
class Instance:
    """One DICOM file's header (no pixel data) and where to read the file again."""

    source: FileSource
    header: Dataset

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class CorruptEntry:
    name: str
    reason: str


@dataclass
class HeaderScan:
    instances: list[Instance] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not DICOM images
    corrupt: list[CorruptEntry] = field(default_factory=list)


def scan_headers(
    sources: Sequence[FileSource], step: Callable[[float], None] | None = None
) -> HeaderScan:
    """Read the header of every source, sorting each into instances, skipped or corrupt."""
    scan = HeaderScan()
    total = max(len(sources), 1)
    for done, source in enumerate(sources, start=1):
        _scan_one(source, scan)
        if step is not None:
            step(done / total)
    return scan


def _scan_one(source: FileSource, scan: HeaderScan) -> None:
    try:
        with source.open() as stream:
            head = stream.read(PREAMBLE_LENGTH + 4)
            kind = _sniff(head)
            if kind is None:
                scan.skipped.append(source.name)
                return
            stream.seek(0)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                header = pydicom.dcmread(stream, stop_before_pixels=True, force=kind == "raw")
    except Exception as exc:  # whatever a damaged file makes the parser raise, it is corrupt
        scan.corrupt.append(CorruptEntry(source.name, _reason(exc)))
        return
    truncated = [str(w.message) for w in caught if "end of file" in str(w.message).lower()]
    if truncated:
        scan.corrupt.append(CorruptEntry(source.name, f"truncated header: {truncated[0]}"))
        return
    sop_class = _sop_class_of(header)
    if not sop_class:
        # Every DICOM object names its SOP class; lenient parsing of junk yields none.
        scan.corrupt.append(
            CorruptEntry(
                source.name,
                "no SOP Class UID in the dataset or its file meta header: not a readable "
                "DICOM object",
            )
        )
        return
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        scan.skipped.append(source.name)
        return
    if not _has_image_attributes(header):
        # Structured reports, presentation states and the like: DICOM, but no image.
        scan.skipped.append(source.name)
        return
    scan.instances.append(Instance(source, header))


def _sniff(head: bytes) -> str | None:
    """'part10' for a file with the DICM prefix, 'raw' for a bare dataset, else None."""
    if len(head) >= PREAMBLE_LENGTH + 4 and head[PREAMBLE_LENGTH:] == b"DICM":
        return "part10"
    if len(head) >= 8:
        group, element = struct.unpack("<HH", head[:4])
        if group in RAW_DATASET_FIRST_GROUPS and element <= 0x0020:
            return "raw"
    return None


def _sop_class_of(header: Dataset) -> str:
    value = str(header.get("SOPClassUID", "") or "")
    if not value and isinstance(header, FileDataset) and header.file_meta is not None:
        value = str(header.file_meta.get("MediaStorageSOPClassUID", "") or "")
    return value


def _has_image_attributes(header: Dataset) -> bool:
    """Whether a header read before its pixel data describes an image (pixel data follows)."""
    return "Rows" in header and "Columns" in header


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
