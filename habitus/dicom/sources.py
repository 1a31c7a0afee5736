"""Where the input files are: a folder (walked recursively), a zip archive, or a list of files.

Zip entries are read in memory, one at a time, when needed; nothing is extracted to disk. An
archive with an entry that would escape its folder (absolute path or ``..``) is refused as a
whole, since such an archive was not made by an imaging system.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from habitus.errors import CorruptFile, InputRefused

NIFTI_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz")


class ZipArchive:
    """A zip archive opened once and shared by its entries; reads are serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._zip: zipfile.ZipFile | None = None

    def read(self, member: str) -> bytes:
        with self._lock:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.path)
            return self._zip.read(member)

    def close(self) -> None:
        with self._lock:
            if self._zip is not None:
                self._zip.close()
                self._zip = None


@dataclass(frozen=True)
class FileSource:
    """One input file: a path on disk, or an entry of a zip archive on disk."""

    path: Path
    member: str | None = None  # entry name inside the zip at ``path``
    archive: ZipArchive | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        """How the file is named in messages: the path, or ``archive.zip!entry``."""
        return f"{self.path}!{self.member}" if self.member is not None else str(self.path)

    def open(self) -> BinaryIO:
        """A binary stream of the file's content; the caller closes it."""
        if self.member is None:
            return self.path.open("rb")
        archive = self.archive or ZipArchive(self.path)
        return io.BytesIO(archive.read(self.member))


def is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES)


def collect_sources(source: Path | Sequence[Path]) -> list[FileSource]:
    """Every file of a folder, archive or list, in a stable (sorted) order."""
    paths = [source] if isinstance(source, Path) else list(source)
    found: list[FileSource] = []
    for path in paths:
        found.extend(_sources_of(Path(path)))
    return found


def _sources_of(path: Path) -> Iterator[FileSource]:
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            yield from _file_sources(child)
    elif path.is_file():
        yield from _file_sources(path)
    else:
        raise InputRefused(f"input not found: expected a folder, a zip or a file at {path}")


def _file_sources(path: Path) -> Iterator[FileSource]:
    if path.suffix.lower() == ".zip":
        yield from zip_sources(path)
    else:
        yield FileSource(path)


def zip_sources(path: Path) -> list[FileSource]:
    """The file entries of a zip archive; refuses archives whose entries escape their folder."""
    try:
        with zipfile.ZipFile(path) as opened:
            infos = opened.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptFile(f"expected a readable zip archive at {path}, found: {exc}") from exc
    for info in infos:
        if _escapes_folder(info.filename):
            raise InputRefused(
                f"zip archive {path} refused: entry {info.filename!r} points outside the "
                "archive folder (absolute path or '..'), which an imaging export never writes"
            )
    members = sorted(info.filename for info in infos if not info.is_dir())
    archive = ZipArchive(path)  # one central-directory read for all entries
    return [FileSource(path, member, archive) for member in members]


def close_sources(sources: Sequence[FileSource]) -> None:
    """Close the zip archives that entries were read from."""
    for archive in {id(s.archive): s.archive for s in sources if s.archive is not None}.values():
        archive.close()


def _escapes_folder(entry: str) -> bool:
    normalised = entry.replace("\\", "/")
    pure = PurePosixPath(normalised)
    has_drive = len(normalised) > 1 and normalised[1] == ":"
    return pure.is_absolute() or has_drive or ".." in pure.parts
