"""Unpacking an uploaded study into a spool folder: zip, multipart/form-data, STOW-RS.

The request body is first written to disk (bounded by the upload limit), then unpacked here
into one flat folder of numbered files. Everything is judged before it costs much: a zip by
its end record and central directory (entries, declared sizes, their ratio to the archive's
size) before any entry is extracted, each entry's extraction cut at the size its directory
declares, and every file by its first bytes (preamble, "DICM", file meta) before anything
parses it. Every refusal says what was expected and what was found; the HTTP status to
answer with travels on the error.
"""

from __future__ import annotations

import lzma
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from python_multipart.multipart import MultipartParser, parse_options_header

from habitus.errors import InputRefused
from service.part10 import NotPart10, Part10Meta, read_part10_meta
from service.zip_directory import NotAZip, read_end_record

CHUNK = 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
DICOM_MEDIA_TYPE = "application/dicom"
ZIP_MEDIA_TYPES = {"application/zip", "application/x-zip-compressed"}
ZIP_ENCRYPTED_FLAG = 0x1
# the ratio limit applies above this declared size: smaller archives cost little either way
ZIP_RATIO_FLOOR_BYTES = 64 * 1024 * 1024
# bytes of central directory allowed per permitted entry (46 bytes of record and a name)
ZIP_DIRECTORY_BYTES_PER_ENTRY = 512
MULTIPART_MEDIA_TYPES = {"multipart/form-data", "multipart/related"}
# what reading a damaged entry raises: bad headers or CRC, an offset outside the archive
# (OSError), a truncated or corrupt deflate, bzip2 (OSError) or LZMA stream
ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
)


class UploadRefused(InputRefused):
    """An upload that cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, kind: str = "upload-refused") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class UploadLimits:
    max_unpacked_bytes: int
    max_files: int
    max_zip_ratio: float


@dataclass
class UnpackedUpload:
    """Files written into the spool folder (with their file meta), and entries left out with
    the reason."""

    files: list[Path] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    meta: dict[Path, Part10Meta] = field(default_factory=dict)


class _UploadFolder:
    """Writes numbered files into one folder, enforcing the file-count and size limits."""

    def __init__(self, folder: Path, limits: UploadLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.result = UnpackedUpload()
        self.bytes_written = 0
        self._count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def new_path(self) -> Path:
        self._count += 1
        if self._count > self.limits.max_files:
            raise UploadRefused(
                f"an upload may hold at most {self.limits.max_files} files; this one holds more",
                status=413,
                kind="upload-too-large",
            )
        return self.folder / f"{self._count:06d}.dcm"

    def count_bytes(self, n: int) -> None:
        self.bytes_written += n
        if self.bytes_written > self.limits.max_unpacked_bytes:
            raise UploadRefused(
                f"an upload may unpack to at most {self.limits.max_unpacked_bytes} bytes; "
                "this one unpacks to more",
                status=413,
                kind="upload-too-large",
            )

    def keep_if_dicom(self, path: Path, label: str) -> None:
        """Keep a DICOM Part 10 file, judged by its first bytes; drop anything else."""
        try:
            self.result.meta[path] = read_part10_meta(path)
        except NotPart10 as exc:
            path.unlink()
            self.result.ignored.append(f"{label}: {exc}")
            return
        self.result.files.append(path)

    def copy_stream(self, source: _Readable, label: str, declared: int | None = None) -> None:
        """Copy ``source`` into a new file; past ``declared`` bytes (a zip entry's size in its
        directory) the copy stops and the upload is refused, whatever the source would give."""
        path = self.new_path()
        copied = 0
        with path.open("wb") as out:
            while chunk := source.read(CHUNK):
                copied += len(chunk)
                if declared is not None and copied > declared:
                    raise UploadRefused(
                        f"zip entry {label!r} unpacks to more than the {declared} bytes its "
                        "directory declares",
                        status=422,
                        kind="zip-directory-lies",
                    )
                self.count_bytes(len(chunk))
                out.write(chunk)
        self.keep_if_dicom(path, label)


def safe_entry_name(name: str) -> PurePosixPath:
    """A zip entry's name as a relative path; refuses names that leave the upload folder."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    escapes = (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")  # a Windows drive
        or ".." in path.parts
    )
    if escapes:
        raise UploadRefused(
            f"zip entries must stay inside the archive's folder; {name!r} points outside it",
            kind="zip-entry-escapes",
        )
    return path


def _check_end_record(archive: Path, limits: UploadLimits) -> None:
    """Judge the entry count and directory size the end record declares, before zipfile
    reads the directory (it keeps an object per entry)."""
    try:
        end = read_end_record(archive)
    except NotAZip as exc:
        raise UploadRefused(f"expected a zip archive; the upload is not one ({exc})") from exc
    if end.entries > limits.max_files:
        raise UploadRefused(
            f"an upload may hold at most {limits.max_files} files; this archive declares "
            f"{end.entries} entries",
            status=413,
            kind="upload-too-large",
        )
    max_directory = limits.max_files * ZIP_DIRECTORY_BYTES_PER_ENTRY
    if end.directory_bytes > max_directory:
        raise UploadRefused(
            f"a zip's central directory may be at most {max_directory} bytes "
            f"({ZIP_DIRECTORY_BYTES_PER_ENTRY} per permitted file); this one declares "
            f"{end.directory_bytes}",
            status=413,
            kind="upload-too-large",
        )


def _check_declared_sizes(
    archive: Path, entries: list[zipfile.ZipInfo], limits: UploadLimits
) -> None:
    """Refuse an archive whose directory declares too many files, too many bytes, or bytes
    out of proportion to its own size (a zip bomb), before anything is extracted."""
    if len(entries) > limits.max_files:
        raise UploadRefused(
            f"an upload may hold at most {limits.max_files} files; this archive holds "
            f"{len(entries)}",
            status=413,
            kind="upload-too-large",
        )
    declared = sum(e.file_size for e in entries)
    if declared > limits.max_unpacked_bytes:
        raise UploadRefused(
            f"an upload may unpack to at most {limits.max_unpacked_bytes} bytes; "
            f"this archive declares {declared}",
            status=413,
            kind="upload-too-large",
        )
    packed = max(archive.stat().st_size, 1)
    if declared > ZIP_RATIO_FLOOR_BYTES and declared > limits.max_zip_ratio * packed:
        raise UploadRefused(
            f"a zip may unpack to at most {limits.max_zip_ratio:g} times its size; this one "
            f"({packed} bytes) declares {declared} bytes unpacked, {declared / packed:.0f} "
            "times its size",
            status=413,
            kind="zip-ratio",
        )


def unpack_zip(archive: Path, spool: _UploadFolder) -> None:
    _check_end_record(archive, spool.limits)
    try:
        zf = zipfile.ZipFile(archive)
    except ZIP_READ_ERRORS as exc:
        raise UploadRefused(f"expected a zip archive; the upload is not one ({exc})") from exc
    with zf:
        entries = [e for e in zf.infolist() if not e.is_dir()]
        for entry in entries:  # check every name before writing anything
            safe_entry_name(entry.filename)
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise UploadRefused(
                    f"zip entries must be regular files; {entry.filename!r} is a symbolic link",
                    kind="zip-entry-escapes",
                )
            if entry.flag_bits & ZIP_ENCRYPTED_FLAG:
                raise UploadRefused(
                    f"zip entries must not be encrypted; {entry.filename!r} is password-protected"
                )
        _check_declared_sizes(archive, entries, spool.limits)
        for entry in entries:
            if _is_noise(entry.filename):
                spool.result.ignored.append(f"{entry.filename}: operating-system metadata")
                continue
            try:
                source = zf.open(entry)
            except ZIP_READ_ERRORS as exc:
                raise _unreadable(entry, exc) from exc
            with source:
                spool.copy_stream(_EntryReader(source, entry), entry.filename, entry.file_size)


def _unreadable(entry: zipfile.ZipInfo, exc: Exception) -> UploadRefused:
    return UploadRefused(f"zip entry {entry.filename!r} cannot be read ({exc})")


class _EntryReader:
    """Reads a zip entry; a damaged entry is refused (errors writing the spool are not)."""

    def __init__(self, source: IO[bytes], entry: zipfile.ZipInfo) -> None:
        self.source = source
        self.entry = entry

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self.source.read(size)
        except ZIP_READ_ERRORS as exc:
            raise _unreadable(self.entry, exc) from exc


def _is_noise(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts:  # "" or ".": no name to judge
        return False
    return "__MACOSX" in parts or parts[-1] in {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    size: int = 0


def _parse_multipart(body: Path, boundary: bytes, spool: _UploadFolder) -> list[_Part]:
    """Split a multipart body into parts, each written to its own file."""
    parts: list[_Part] = []
    header_field = bytearray()
    header_value = bytearray()
    current: list[_Part] = []
    sink: list[IO[bytes]] = []

    def on_part_begin() -> None:
        current[:] = [_Part()]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current[0].headers[header_field.decode("latin-1").lower()] = header_value.decode("latin-1")
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        current[0].path = spool.new_path()
        sink[:] = [current[0].path.open("wb")]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        spool.count_bytes(end - start)
        current[0].size += end - start
        sink[0].write(data[start:end])

    def on_part_end() -> None:
        if sink:
            sink[0].close()
            sink.clear()
        parts.append(current[0])

    callbacks: dict[str, Callable[..., None]] = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        with body.open("rb") as f:
            while chunk := f.read(CHUNK):
                parser.write(chunk)
        parser.finalize()
    except UploadRefused:
        raise
    except Exception as exc:  # the parser raises its own error types for malformed bodies
        raise UploadRefused(f"the multipart body is malformed ({exc})") from exc
    finally:
        for open_part in sink:
            open_part.close()
    return parts


def _part_media_type(part: _Part) -> str:
    media, _ = parse_options_header(part.headers.get("content-type", ""))
    return media.decode("latin-1").lower()


def _part_label(part: _Part, index: int) -> str:
    _, params = parse_options_header(part.headers.get("content-disposition", ""))
    name = params.get(b"filename") or params.get(b"name")
    return name.decode("utf-8", "replace") if name else f"part {index + 1}"


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as f:
        return f.read(len(magic)) == magic


def upload_media_type(content_type: str) -> str:
    """The media type of an upload, checked (with its parameters) before the body is read."""
    media_bytes, params = parse_options_header(content_type)
    media = media_bytes.decode("latin-1").lower()
    if media not in {*ZIP_MEDIA_TYPES, *MULTIPART_MEDIA_TYPES, DICOM_MEDIA_TYPE}:
        raise UploadRefused(
            "expected application/zip, multipart/form-data, "
            f'multipart/related; type="{DICOM_MEDIA_TYPE}" or {DICOM_MEDIA_TYPE}; '
            f"got {media or 'no content type'}",
            status=415,
            kind="unsupported-media-type",
        )
    if media in MULTIPART_MEDIA_TYPES and not params.get(b"boundary"):
        raise UploadRefused(f"a {media} body needs a boundary parameter; none was given")
    if media == "multipart/related":
        declared = params.get(b"type", b"").decode("latin-1").lower()
        if declared and declared != DICOM_MEDIA_TYPE:
            raise UploadRefused(
                f'STOW-RS uploads must be multipart/related; type="{DICOM_MEDIA_TYPE}"; '
                f'this one declares type="{declared}"',
                status=415,
                kind="unsupported-media-type",
            )
    return media


def is_stow(content_type: str) -> bool:
    """A STOW-RS request: multipart/related (of application/dicom parts)."""
    media, _ = parse_options_header(content_type)
    return media.decode("latin-1").lower() == "multipart/related"


def unpack_upload(
    body: Path,
    content_type: str,
    folder: Path,
    limits: UploadLimits,
    require_dicom: bool = True,
) -> UnpackedUpload:
    """Unpack a request body written to ``body`` into DICOM files in ``folder``.

    ``require_dicom``: refuse (422) an upload in which no file is DICOM; STOW-RS reports
    each refused part in its response instead.
    """
    media = upload_media_type(content_type)
    spool = _UploadFolder(folder, limits)
    if body.stat().st_size == 0:
        raise UploadRefused("expected DICOM files in the request body; it is empty")
    if media in ZIP_MEDIA_TYPES:
        unpack_zip(body, spool)
    elif media in MULTIPART_MEDIA_TYPES:
        boundary = parse_options_header(content_type)[1][b"boundary"]
        for index, part in enumerate(_parse_multipart(body, boundary, spool)):
            _sort_part(part, index, media, spool)
    else:
        with body.open("rb") as whole:
            spool.copy_stream(whole, "request body")
    if require_dicom and not spool.result.files:
        found = "; ".join(spool.result.ignored[:10]) or "no files"
        raise UploadRefused(
            f"expected DICOM files in the upload; found none ({found})",
            status=422,
            kind="no-dicom",
        )
    return spool.result


def _sort_part(part: _Part, index: int, media: str, spool: _UploadFolder) -> None:
    """Keep a DICOM part, unpack a zip part, drop (and say so) anything else."""
    if part.path is None:
        return
    label = _part_label(part, index)
    part_type = _part_media_type(part)
    if media == "multipart/form-data" and "filename" not in part.headers.get(
        "content-disposition", ""
    ):
        part.path.unlink()  # a plain form field, not a file
        return
    if part_type in ZIP_MEDIA_TYPES or (
        media == "multipart/form-data" and _starts_with(part.path, ZIP_MAGIC)
    ):
        archive = part.path.with_suffix(".zip")
        part.path.rename(archive)
        spool.bytes_written -= part.size  # counted again as the archive is unpacked
        unpack_zip(archive, spool)
        archive.unlink()
        return
    if media == "multipart/related" and part_type not in {DICOM_MEDIA_TYPE, ""}:
        part.path.unlink()
        spool.result.ignored.append(f"{label}: {part_type} is not {DICOM_MEDIA_TYPE}")
        return
    spool.keep_if_dicom(part.path, label)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
