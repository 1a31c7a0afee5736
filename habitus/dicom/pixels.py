"""Decode the pixel data of the chosen series and stack it into an int16 HU volume.

Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg for JPEG 2000 and
JPEG lossless, pyjpegls for JPEG-LS, pydicom itself for RLE). Decoding runs in a small thread
pool: the decoders and file reads release the GIL for most of their work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from habitus.dicom.attributes import integer, meta_text, number, text
from habitus.dicom.read import Instance
from habitus.errors import CorruptFile, InputRefused

INT16_MIN, INT16_MAX = np.iinfo(np.int16).min, np.iinfo(np.int16).max


@dataclass(frozen=True)
class Rescale:
    slope: float
    intercept: float

    @classmethod
    def of(cls, header: Dataset) -> Rescale:
        slope = number(header, "RescaleSlope")
        intercept = number(header, "RescaleIntercept")
        return cls(slope if slope is not None else 1.0, intercept if intercept is not None else 0.0)

    @property
    def is_integer_shift(self) -> bool:
        return self.slope == 1.0 and float(self.intercept).is_integer()


def decode_hu(
    instances: list[Instance],
    rows: int,
    columns: int,
    step: Callable[[float], None] | None = None,
    workers: int | None = None,
) -> NDArray[np.int16]:
    """Decode ``instances`` (in volume order) into a (slices, rows, columns) int16 HU array."""
    hu = np.empty((len(instances), rows, columns), dtype=np.int16)
    workers = workers or min(4, os.cpu_count() or 1)
    total = max(len(instances), 1)

    def decode_into(k: int) -> None:
        hu[k] = _slice_hu(instances[k], rows, columns)

    if workers <= 1 or len(instances) < 4:
        for k in range(len(instances)):
            decode_into(k)
            if step is not None:
                step((k + 1) / total)
        return hu
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="habitus-decode") as pool:
        for done, _ in enumerate(pool.map(decode_into, range(len(instances))), start=1):
            if step is not None:
                step(done / total)
    return hu


def _slice_hu(instance: Instance, rows: int, columns: int) -> NDArray[np.int16]:
    stored = _decode(instance)
    if stored.shape != (rows, columns):
        raise InputRefused(
            f"{instance.name}: expected a single {rows}x{columns} grayscale frame, found pixel "
            f"data of shape {stored.shape}"
        )
    return to_hu(stored, Rescale.of(instance.header))


def _decode(instance: Instance) -> NDArray[np.generic]:
    syntax = meta_text(instance.header, "TransferSyntaxUID")
    try:
        with instance.source.open() as stream:
            dataset = pydicom.dcmread(stream, force=True)
        if not syntax:
            syntax = _assume_transfer_syntax(dataset)
        if "PixelData" not in dataset:
            raise CorruptFile(f"{instance.name}: expected pixel data, found none")
        samples = integer(dataset, "SamplesPerPixel") or 1
        if samples != 1:
            raise InputRefused(
                f"{instance.name}: expected grayscale CT (SamplesPerPixel 1), found "
                f"{samples} samples per pixel ({text(dataset, 'PhotometricInterpretation')})"
            )
        return np.asarray(dataset.pixel_array)
    except (CorruptFile, InputRefused):
        raise
    except Exception as exc:  # any decoder failure means this file cannot be used
        name = _syntax_name(syntax)
        raise CorruptFile(
            f"cannot decode the pixel data of {instance.name} (transfer syntax {name}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _assume_transfer_syntax(dataset: Dataset) -> str:
    """A bare dataset (no file meta) is uncompressed: state the encoding it was read with."""
    implicit, little = dataset.original_encoding
    if implicit:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRBigEndian if little is False else ExplicitVRLittleEndian
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    return str(syntax)


def _syntax_name(uid: str) -> str:
    if not uid:
        return "(unknown)"
    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def to_hu(stored: NDArray[np.generic], rescale: Rescale) -> NDArray[np.int16]:
    """Stored values to HU, rounded and clipped to the int16 range."""
    if rescale.is_integer_shift:
        shifted = stored.astype(np.int32) + int(rescale.intercept)
        return np.clip(shifted, INT16_MIN, INT16_MAX).astype(np.int16)
    scaled = stored.astype(np.float32) * np.float32(rescale.slope) + np.float32(rescale.intercept)
    return np.clip(np.rint(scaled), INT16_MIN, INT16_MAX).astype(np.int16)
