"""A worker plug-in for tests: every segmenter the worker loads is wrapped in
``tests.worker.poison.KillingSegmenter``.

A worker loads it with Celery's own option ``--include tests.worker.poison_plugin`` (before
its pool processes start); production workers never do.
"""

from __future__ import annotations

from habitus.segment.base import Segmenter
from tests.worker.poison import KillingSegmenter
from worker import tasks

_segmenter_for = tasks.segmenter_for


def _killing_segmenter_for(kind: str, device: str) -> Segmenter:
    return KillingSegmenter(_segmenter_for(kind, device))


# read when the pool process builds its job runner, after this module is imported
tasks.segmenter_for = _killing_segmenter_for
