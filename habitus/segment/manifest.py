"""The model manifest: what the ONNX segmenter must know about a model, beside the model.

A model is two files in one folder: ``<model>.onnx`` and ``<model>.json``, the manifest.
The manifest is UTF-8 JSON with exactly these keys (unknown keys are refused, so that a typo
cannot silently fall back to a default):

``manifest_version``  1, the version of this format.
``model_id``          stable identifier, e.g. ``"habitus-unet3d"``; part of derived UIDs.
``version``           the model's own version, e.g. ``"1.2.0"``.
``description``       one line for reports and DICOM headers (default ``""``).
``file``              name of the ONNX file in the same folder (a bare name, no path).
``sha256``            hex SHA-256 of that file; checked each time the model is loaded.
``labels``            ``{"0": "background", "1": "skin", ...}``: output channel -> class. It
                      must list every member of :class:`habitus.labels.Tissue`, by value, with
                      the member's name (any case); :func:`tissue_label_names` gives it.
``input_spacing_mm``  ``[z, y, x]``: the grid the model was trained on, in mm, along the
                      volume's (slice, row, column) axes. The scan is resampled to it.
``patch_size``        ``[d, h, w]``: voxels of one network input patch on that grid.
``overlap``           fraction of a patch that neighbouring patches share, in [0, 1)
                      (default 0.5: each patch advances by half its size).
``batch_size``        patches per network call (default 1). A model whose batch axis is
                      fixed is always fed exactly that many (the last call is padded).
``normalization``     HU -> network input: ``{"clip_hu": [lo, hi], "scale": "minmax"}`` maps
                      ``[lo, hi]`` to ``[0, 1]``; ``{"clip_hu": [lo, hi], "scale": "zscore",
                      "mean": m, "std": s}`` gives ``(clip(hu) - m) / s``.
                      :meth:`Normalization.apply` is the reference implementation.
``input_name``        ONNX input, float32 ``(batch, 1, d, h, w)`` (default ``"input"``).
``output_name``       ONNX output, float32 ``(batch, len(labels), d, h, w)``
                      (default ``"output"``).
``output_kind``       ``"logits"`` (softmax is applied) or ``"probabilities"``.
``min_ort_version``   oldest onnxruntime that can run the model, e.g. ``"1.18"``, or null.
``refinement``        null, or ``"attenuation"`` to correct the labels at native resolution
                      by attenuation (:mod:`habitus.segment.refine`).
``training``          free-form object: training data, recipe, validation metrics.
``validated``         true once the model met the accuracy bar stated in its model card;
                      ``--segmenter auto`` runs only a validated model (default false).
``created``           ISO 8601 date-time of the export.

The exporter builds the manifest with :func:`manifest_for` (which fills ``file``, ``sha256``
and ``created`` from the ONNX file) and saves it with :func:`write_manifest`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from habitus.errors import ModelError
from habitus.labels import Tissue

MANIFEST_VERSION: Literal[1] = 1


def tissue_label_names() -> dict[int, str]:
    """The ``labels`` entry every manifest must carry: Tissue value -> lower-case name."""
    return {int(t): t.name.lower() for t in Tissue}


class Normalization(BaseModel):
    """How Hounsfield units become the network's input values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_hu: tuple[float, float] = (-1000.0, 1000.0)
    scale: Literal["minmax", "zscore"] = "minmax"
    mean: float | None = None  # zscore only
    std: float | None = None  # zscore only

    @model_validator(mode="after")
    def _check(self) -> Normalization:
        lo, hi = self.clip_hu
        if not lo < hi:
            raise ValueError(f"clip_hu must be [low, high] with low < high, found {[lo, hi]}")
        if self.scale == "zscore" and (self.mean is None or self.std is None or self.std <= 0):
            raise ValueError(
                f"zscore needs mean and a positive std, found mean={self.mean}, std={self.std}"
            )
        return self

    def apply(self, hu: NDArray[Any]) -> NDArray[np.float32]:
        """Clip and scale ``hu`` (any shape) to float32 network input."""
        lo, hi = self.clip_hu
        x = np.clip(hu, lo, hi).astype(np.float32, copy=False)
        if self.scale == "minmax":
            offset, factor = lo, 1.0 / (hi - lo)
        else:
            assert self.mean is not None and self.std is not None  # checked at validation
            offset, factor = self.mean, 1.0 / self.std
        x -= np.float32(offset)
        x *= np.float32(factor)
        return x

    def value_of(self, hu: float) -> float:
        """The input value of a single HU value (e.g. air, to pad patches with)."""
        return float(self.apply(np.asarray([hu], dtype=np.float32))[0])


class ModelManifest(BaseModel):
    """The contents of ``<model>.json`` (format described in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    manifest_version: Literal[1] = MANIFEST_VERSION
    model_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    file: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    labels: dict[int, str]
    input_spacing_mm: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    overlap: float = Field(default=0.5, ge=0.0, lt=1.0)
    batch_size: int = Field(default=1, ge=1)
    normalization: Normalization = Field(default_factory=Normalization)
    input_name: str = "input"
    output_name: str = "output"
    output_kind: Literal["logits", "probabilities"] = "logits"
    min_ort_version: str | None = None
    refinement: Literal["attenuation"] | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    validated: bool = False
    created: datetime

    @field_validator("file")
    @classmethod
    def _bare_name(cls, v: str) -> str:
        if Path(v).name != v or v in (".", ".."):
            raise ValueError(f"file must be a bare file name beside the manifest, found {v!r}")
        return v

    @field_validator("input_spacing_mm")
    @classmethod
    def _positive_spacing(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError(f"input_spacing_mm must be positive, found {list(v)}")
        return v

    @field_validator("patch_size")
    @classmethod
    def _positive_patch(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError(f"patch_size must be positive, found {list(v)}")
        return v

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def check_labels(manifest: ModelManifest) -> None:
    """Raise ModelError unless the manifest's labels are exactly habitus.labels.Tissue."""
    expected = tissue_label_names()
    found = {value: name.lower() for value, name in manifest.labels.items()}
    if found != expected:
        raise ModelError(
            f"model {manifest.model_id!r}: labels must be {expected} (habitus.labels.Tissue), "
            f"found {dict(sorted(manifest.labels.items()))}"
        )


def load_manifest(path: Path | str) -> ModelManifest:
    """Read and validate a manifest; ModelError says what is missing or wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ModelError(f"cannot read model manifest {path}: {e.strerror or e}") from e
    try:
        manifest = ModelManifest.model_validate_json(text)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors()
        )
        raise ModelError(f"model manifest {path} is not valid: {problems}") from e
    check_labels(manifest)
    return manifest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_model_path(manifest_path: Path | str, manifest: ModelManifest) -> Path:
    """The ONNX file named by the manifest, after checking that it exists and its checksum."""
    model_path = Path(manifest_path).parent / manifest.file
    if not model_path.is_file():
        raise ModelError(
            f"model {manifest.model_id!r}: expected the ONNX file {model_path} named by "
            f"{manifest_path}, found no such file"
        )
    actual = file_sha256(model_path)
    if actual != manifest.sha256.lower():
        raise ModelError(
            f"model {manifest.model_id!r}: {model_path} has SHA-256 {actual}, the manifest "
            f"expects {manifest.sha256.lower()}; the file is corrupt, truncated or replaced"
        )
    return model_path


def manifest_for(onnx_path: Path | str, **fields: Any) -> ModelManifest:
    """A manifest for ``onnx_path``: ``file``, ``sha256`` and ``created`` are filled in.

    ``labels`` defaults to :func:`tissue_label_names`; every other field comes from ``fields``.
    """
    onnx_path = Path(onnx_path)
    values: dict[str, Any] = {
        "file": onnx_path.name,
        "sha256": file_sha256(onnx_path),
        "created": datetime.now(UTC),
        "labels": tissue_label_names(),
    }
    values.update(fields)
    try:
        manifest = ModelManifest.model_validate(values)
    except ValidationError as e:
        raise ModelError(f"cannot build a manifest for {onnx_path}: {e}") from e
    check_labels(manifest)
    return manifest


def write_manifest(manifest: ModelManifest, path: Path | str) -> Path:
    """Save ``manifest`` as JSON at ``path``, conventionally ``<model>.json`` beside the ONNX."""
    check_labels(manifest)
    target = Path(path)
    data = manifest.model_dump(mode="json")
    data["labels"] = {str(k): v for k, v in sorted(manifest.labels.items())}
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target
