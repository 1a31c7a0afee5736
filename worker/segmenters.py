"""Segmenters loaded once per worker process and reused by every job it runs."""

from __future__ import annotations

import logging
import threading

from habitus.segment.base import Segmenter

log = logging.getLogger("worker.segmenters")

_loaded: dict[tuple[str, str], Segmenter] = {}
_lock = threading.Lock()


def segmenter_for(kind: str, device: str) -> Segmenter:
    """The segmenter for (kind, device), loaded on first use; a failed load is not cached."""
    key = (kind, device)
    with _lock:
        if key not in _loaded:
            from habitus.segment.loader import load_segmenter  # imports onnxruntime if needed

            segmenter = load_segmenter(kind, device)  # type: ignore[arg-type]
            info = segmenter.info
            log.info(
                "loaded segmenter %s %s (%s) on %s",
                info.model_id,
                info.version,
                info.kind,
                info.device,
            )
            _loaded[key] = segmenter
        return _loaded[key]


def loaded_count() -> int:
    return len(_loaded)
