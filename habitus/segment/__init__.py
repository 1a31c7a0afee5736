"""Segmenters: the ONNX 3D U-Net and the rule-based fallback, behind one protocol.

onnxruntime is imported only when an OnnxSegmenter is built, so this package imports where
it is not installed (the API image).
"""

from habitus.segment.base import ModelInfo, Segmenter
from habitus.segment.loader import find_default_manifest, load_segmenter
from habitus.segment.manifest import ModelManifest, load_manifest, manifest_for, write_manifest
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
