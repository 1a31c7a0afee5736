"""Segmenters: the ONNX 3D U-Net and the rule-based fallback, behind one protocol.

The ONNX names resolve lazily (PEP 562): importing this package must not pull in the
engine's dependencies where only the protocol is needed.
"""

from typing import TYPE_CHECKING, Any

from habitus.segment.base import ModelInfo, Segmenter
from habitus.segment.loader import find_default_manifest, load_segmenter
from habitus.segment.manifest import ModelManifest, load_manifest, manifest_for, write_manifest

if TYPE_CHECKING:
    from habitus.segment.onnx_segmenter import OnnxSegmenter

__all__ = [
    "ModelInfo",
    "ModelManifest",
    "OnnxSegmenter",
    "Segmenter",
    "find_default_manifest",
    "load_manifest",
    "load_segmenter",
    "manifest_for",
    "write_manifest",
]


def __getattr__(name: str) -> Any:
    if name == "OnnxSegmenter":
        from habitus.segment.onnx_segmenter import OnnxSegmenter

        return OnnxSegmenter
    raise AttributeError(name)
