"""A real listener on a free port, with a spool in a temporary directory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from habitus.jobs import Origin
from habitus.nodes import DicomNode
from habitus.settings import ListenerSettings
from service.listener import Listener


class RecordedSubmissions:
    """A submit function that keeps what it was given (the real one needs the whole service)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, Origin]] = []
        self.instances: list[dict[str, Dataset]] = []  # per call: SOP Instance UID -> data set
        self.arrived = threading.Event()

    def __call__(self, study_dir: Path, origin: Origin) -> list[str]:
        self.calls.append((study_dir, origin))
        self.instances.append(
            {p.stem: pydicom.dcmread(p) for p in sorted(study_dir.rglob("*.dcm"))}
        )
        self.arrived.set()
        return [f"job-{len(self.calls)}"]


StartListener = Callable[..., tuple[Listener, RecordedSubmissions]]


@pytest.fixture
def start_listener(tmp_path: Path) -> Iterator[StartListener]:
    started: list[Listener] = []

    def start(
        nodes: list[DicomNode] | None = None, **overrides: object
    ) -> tuple[Listener, RecordedSubmissions]:
        values: dict[str, object] = {
            "ae_title": "HABITUS",
            "host": "127.0.0.1",
            "port": 0,
            "spool_dir": tmp_path / "spool",
            "allowed_ae_titles": ["TESTSCU"],
            "quiet_period_s": 0.5,
            "poll_interval_s": 0.1,
        }
        values.update(overrides)
        submissions = RecordedSubmissions()
        listener = Listener(
            ListenerSettings.model_validate(values), submissions, nodes or [], fsync=False
        )
        started.append(listener.start())
        return listener, submissions

    yield start
    for listener in started:
        listener.stop()
