"""The segmenters a worker can run: the configured (or bundled) ONNX models and the rules."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends

from habitus.errors import ModelError
from habitus.segment.loader import configured_model_dir, model_manifests
from habitus.segment.manifest import load_manifest
from service.api.deps import require_client
from service.api.problems import PROBLEM_RESPONSES
from service.api.schemas import ModelList, ModelView

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Depends(require_client)],
    responses=PROBLEM_RESPONSES,
)


def rules_model() -> ModelView:
    """The rule-based segmenter, always available: it needs no model file."""
    from habitus.segment.rules import RuleSegmenter  # scipy-heavy: only when asked

    info = RuleSegmenter().info
    return ModelView(
        model_id=info.model_id,
        version=info.version,
        kind=info.kind,
        description=info.description,
        available=True,
    )


def read_models(folder: Path) -> list[ModelView]:
    """Every model of the folder, read from its manifest (onnxruntime is not imported)."""
    return [_model_view(path) for path in model_manifests(folder)]


def _model_view(manifest_path: Path) -> ModelView:
    try:
        manifest = load_manifest(manifest_path)
    except ModelError as exc:
        return ModelView(
            model_id=manifest_path.stem,
            version="",
            kind="onnx",
            description=f"unusable manifest: {exc}",
            available=False,
        )
    raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    return ModelView(
        model_id=manifest.model_id,
        version=manifest.version,
        kind="onnx",
        description=manifest.description,
        sha256=manifest.sha256,
        available=(manifest_path.parent / manifest.file).is_file(),
        manifest=raw,
    )


@router.get("", summary="Available segmenters and models")
def list_models() -> ModelList:
    """The models in HABITUS_MODEL_DIR (else the bundled ones), and the rule-based segmenter."""
    return ModelList(models=[*read_models(configured_model_dir()), rules_model()])
