"""Segmenters: the ONNX 3D U-Net and the rule-based fallback, behind one protocol."""

from habitus.segment.base import ModelInfo, Segmenter

__all__ = ["ModelInfo", "Segmenter"]
