"""Habitus: body-composition segmentation and reporting for whole-body and torso CT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("habitus")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

PIPELINE_VERSION = "1"
"""Bumped whenever a change to the pipeline can change its outputs; part of derived UIDs."""
