"""Rule-based segmentation: anatomy from attenuation thresholds, no trained model."""

from habitus.segment.rules.segmenter import RuleSegmenter

__all__ = ["RuleSegmenter"]
