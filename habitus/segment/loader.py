"""Choose and build the segmenter: the bundled (or configured) ONNX model, or the rules.

A model folder holds pairs ``<model>.onnx`` + ``<model>.json`` (the manifest). onnxruntime
and the rule-based segmenter are imported only when chosen, so that this module loads in
installations that have neither.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Literal

from habitus.config import get_settings
from habitus.errors import ModelError
from habitus.segment.base import Segmenter
from habitus.segment.manifest import load_manifest

logger = logging.getLogger(__name__)

SegmenterChoice = Literal["auto", "model", "rules"]
DeviceChoice = Literal["auto", "cpu", "cuda"]


def bundled_model_dir() -> Path:
    """The models shipped inside the package (habitus/models)."""
    return Path(__file__).resolve().parent.parent / "models"


def configured_model_dir(model_dir: Path | str | None = None) -> Path:
    """``model_dir`` if given, else HABITUS_MODEL_DIR, else the bundled models."""
    if model_dir is not None:
        return Path(model_dir)
    return get_settings().model_dir or bundled_model_dir()


def model_manifests(model_dir: Path) -> list[Path]:
    """Manifests in ``model_dir``: each ``<name>.json`` that has a ``<name>.onnx`` beside it."""
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.glob("*.json") if p.with_suffix(".onnx").is_file())


def find_default_manifest(
    model_dir: Path | str | None = None, name: str | None = None
) -> Path | None:
    """The manifest of the model to use, or None when the folder holds no model.

    ``name`` (a manifest's file stem) picks one model when the folder holds several; it
    defaults to the ``model`` setting (HABITUS_MODEL) when that setting exists. With several
    models and no name the choice would be arbitrary, so that is a ModelError.
    """
    folder = configured_model_dir(model_dir)
    manifests = model_manifests(folder)
    if name is None:
        name = getattr(get_settings(), "model", None)
    if name:
        for manifest in manifests:
            if manifest.stem == name:
                return manifest
        raise ModelError(
            f"model {name!r} was asked for; {folder} holds "
            f"{[m.stem for m in manifests] or 'no model'} (pairs <name>.json + <name>.onnx)"
        )
    if len(manifests) > 1:
        raise ModelError(
            f"{folder} holds several models {[m.stem for m in manifests]}; name the one to use "
            f"(HABITUS_MODEL=<name>)"
        )
    return manifests[0] if manifests else None


def onnxruntime_available() -> bool:
    try:
        return importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked installation
        return False


def load_segmenter(
    kind: SegmenterChoice = "auto",
    device: DeviceChoice = "auto",
    model_dir: Path | str | None = None,
) -> Segmenter:
    """Build the segmenter asked for.

    ``"model"`` needs a model and onnxruntime (ModelError otherwise, saying where it looked);
    ``"rules"`` is the rule-based segmenter; ``"auto"`` is the model when a manifest marked
    ``validated`` (it met the accuracy bar of its model card) and onnxruntime are present,
    else the rules: a model that segments worse than the rules is run only when asked for.
    A model that is present but broken (checksum, labels) is an error in every mode: it is
    never replaced silently by the rules.
    """
    if kind not in ("auto", "model", "rules"):
        raise ModelError(f"segmenter must be auto, model or rules, found {kind!r}")
    if kind == "rules":
        return _rule_segmenter()

    folder = configured_model_dir(model_dir)
    manifest = find_default_manifest(folder)
    if manifest is None:
        if kind == "model":
            raise ModelError(
                f"no segmentation model found: looked for <name>.json with <name>.onnx beside "
                f"it in {folder} (set HABITUS_MODEL_DIR, or use the rule-based segmenter)"
            )
        logger.info("no model in %s; using the rule-based segmenter", folder)
        return _rule_segmenter()
    if kind == "auto" and not load_manifest(manifest).validated:
        logger.info("model %s is not validated; using the rule-based segmenter", manifest.stem)
        return _rule_segmenter()
    if not onnxruntime_available():
        if kind == "model":
            raise ModelError(
                f"model {manifest} needs onnxruntime, which is not installed; install "
                f"habitus[cpu] or onnxruntime-gpu"
            )
        logger.warning("onnxruntime is not installed; using the rule-based segmenter")
        return _rule_segmenter()

    from habitus.segment.onnx_segmenter import OnnxSegmenter

    return OnnxSegmenter(manifest, device=device)


def _rule_segmenter() -> Segmenter:
    from habitus.segment.rules import RuleSegmenter

    segmenter: Segmenter = RuleSegmenter()
    return segmenter
