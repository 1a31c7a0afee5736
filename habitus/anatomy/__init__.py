"""Anatomical landmarks from a label map: last rib, iliac crest, L3, torso limits, limbs.

``find_anatomy(labels, geometry)`` returns an :class:`Anatomy` holding the reported
:class:`Landmarks` and the trunk mask of each slice (arms and legs removed) that the metrics
measure in.
"""

from habitus.anatomy.landmarks import Anatomy, find_anatomy
from habitus.anatomy.schema import Landmark, LandmarkName, Landmarks, Vertebra

__all__ = ["Anatomy", "Landmark", "LandmarkName", "Landmarks", "Vertebra", "find_anatomy"]
