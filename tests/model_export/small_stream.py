"""A training stream small enough for a test: 8 mm phantoms, batches of two 8 x 24 x 24
patches, two lanes of two phantoms, half the patches from labelled cases when there are some.
Imports torch (model_export.stream): import it after ``pytest.importorskip("torch")``."""

import dataclasses
from typing import Any

from model_export.stream import StreamSpec

SMALL = StreamSpec(
    seed=5,
    spacing_mm=(8.0, 8.0, 8.0),
    patch_size=(8, 24, 24),
    batch_size=2,
    phantoms=4,
    lanes=2,
    refresh_every=1,
    folder_share=0.5,
    hu_clip=(-1024.0, 1500.0),
    hu_mean=0.0,
    hu_std=250.0,
)


def small_spec(**changes: Any) -> StreamSpec:
    """``SMALL`` with ``changes`` (field names of StreamSpec)."""
    return dataclasses.replace(SMALL, **changes)
