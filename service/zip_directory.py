"""The size of a zip's central directory, read from its end records before anything else.

``zipfile.ZipFile`` builds an object per entry of the central directory as it opens an
archive, so an upload of a few hundred megabytes of directory would cost gigabytes of memory
before any limit is looked at. The end of central directory record (and its Zip64 form)
states the number of entries and the directory's size in a few bytes at the end of the
file: they are read first and judged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

END_SIGNATURE = b"PK\x05\x06"
END_SIZE = 22
MAX_COMMENT = 0xFFFF
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_LOCATOR_SIZE = 20
ZIP64_END_SIGNATURE = b"PK\x06\x06"
ZIP64_END_SIZE = 56


class NotAZip(ValueError):
    """No end of central directory record: the file is not a zip archive."""


@dataclass(frozen=True)
class EndRecord:
    entries: int
    directory_bytes: int


def read_end_record(path: Path) -> EndRecord:
    """The number of entries and the central directory's size, as the end record declares."""
    size = path.stat().st_size
    with path.open("rb") as f:
        tail_start = max(0, size - END_SIZE - MAX_COMMENT)
        f.seek(tail_start)
        tail = f.read()
        at = tail.rfind(END_SIGNATURE)
        if at < 0 or len(tail) - at < END_SIZE:
            raise NotAZip("no end of central directory record")
        entries, directory_bytes = struct.unpack_from("<HI", tail, at + 10)
        end = EndRecord(int(entries), int(directory_bytes))
        end_offset = tail_start + at
        if (entries != 0xFFFF and directory_bytes != 0xFFFFFFFF) or end_offset < ZIP64_LOCATOR_SIZE:
            return end
        # Zip64: the locator just before the end record points at the Zip64 end record
        f.seek(end_offset - ZIP64_LOCATOR_SIZE)
        locator = f.read(ZIP64_LOCATOR_SIZE)
        if locator[:4] != ZIP64_LOCATOR_SIGNATURE:
            return end
        (zip64_end,) = struct.unpack_from("<Q", locator, 8)
        f.seek(zip64_end)
        record = f.read(ZIP64_END_SIZE)
    if len(record) < ZIP64_END_SIZE or record[:4] != ZIP64_END_SIGNATURE:
        raise NotAZip("the Zip64 end of central directory record is missing or damaged")
    zip64_entries, zip64_directory_bytes = struct.unpack_from("<QQ", record, 32)
    return EndRecord(int(zip64_entries), int(zip64_directory_bytes))
