"""Body-composition metrics: class volumes, waist and torso indices, L3 areas, flags, checks.

``compute_body_composition(labels, volume, patient)`` is the one entry point; its result,
a :class:`BodyComposition`, serialises into ``Report.body_composition`` and gives the SR
its flat list of measurements (``measurements.named_measurements``) and the preview its
slice ranges (``BodyComposition.regions``).
"""

from habitus.metrics.compute import compute_body_composition
from habitus.metrics.schema import (
    BodyComposition,
    Flag,
    Flags,
    L3Metrics,
    NamedMeasurement,
    Quality,
    QualityCheck,
    Regions,
    SliceRange,
    SourceInstance,
    TorsoMetrics,
    WaistMetrics,
)

__all__ = [
    "BodyComposition",
    "Flag",
    "Flags",
    "L3Metrics",
    "NamedMeasurement",
    "Quality",
    "QualityCheck",
    "Regions",
    "SliceRange",
    "SourceInstance",
    "TorsoMetrics",
    "WaistMetrics",
    "compute_body_composition",
]
