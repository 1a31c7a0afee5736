"""The segmenters a worker can run: the bundled (or configured) ONNX models and the rules."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Depends

from habitus.config import get_settings as get_core_settings
from habitus.errors import ModelError
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

RULES_MODEL = ModelView(
    model_id="habitus-rules",
    version="1",
    kind="rules",
    description="rule-based segmentation by attenuation and anatomy; no model file needed",
    available=True,
)


def model_dirs() -> list[Path]:
    """The bundled models folder, and HABITUS_MODEL_DIR when it is set."""
    bundled = Path(str(files("habitus") / "models"))
    configured = get_core_settings().model_dir
    return [bundled] + ([configured] if configured and configured != bundled else [])


def read_models(folders: list[Path]) -> list[ModelView]:
    """Every manifest found, read without loading the model (no onnxruntime import)."""
    found: list[ModelView] = []
    for folder in folders:
        for manifest_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            found.append(_model_view(manifest_path))
    return found


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
    return ModelList(models=[*read_models(model_dirs()), RULES_MODEL])
