"""Delivering a job's SEG and SR to a PACS: Orthanc for real, and a strict test SCP."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest
import redis
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    Comprehensive3DSRStorage,
    SegmentationStorage,
)

from habitus.config import RedisSettings
from habitus.jobs import (
    DeliveryRecord,
    DeliveryState,
    JobRecord,
    JobState,
    JobStore,
    Origin,
    OriginKind,
)
from habitus.nodes import DicomNode
from habitus.settings import DeliverySettings, Settings
from tests.conftest import REDIS_PREFIX, TEST_REDIS_URL, delete_keys, missing
from tests.fixtures_orthanc import (
    Orthanc,
    free_port,
    orthanc_fixture,  # noqa: F401  (the orthanc fixture)
)
from worker.delivery import CStoreSender, Deliverer, ResultInstance
from worker.lease import delivery_lease

REDIS_URL = TEST_REDIS_URL
PREFIX = f"{REDIS_PREFIX}delivery:"  # a store of its own within the run's keys


@pytest.fixture
def store() -> Iterator[JobStore]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis is not reachable at {REDIS_URL}")
    store = JobStore(client, prefix=PREFIX)
    yield store
    delete_keys(client, PREFIX)


def write_results(folder: Path, shared_data: Path) -> dict[str, str]:
    """A real DICOM-SEG (dcmqi's liver) and a small Comprehensive 3D SR."""
    folder.mkdir(parents=True, exist_ok=True)
    seg = folder / "seg.dcm"
    shutil.copy(shared_data / "dcmqi-ct-3slice" / "seg_liver.dcm", seg)
    seg.chmod(0o644)
    sr = Dataset()
    sr.file_meta = FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr.SOPClassUID = sr.file_meta.MediaStorageSOPClassUID = Comprehensive3DSRStorage
    sr.SOPInstanceUID = sr.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    source = pydicom.dcmread(seg, stop_before_pixels=True)
    sr.StudyInstanceUID = source.StudyInstanceUID
    sr.SeriesInstanceUID = generate_uid()
    sr.PatientID = source.PatientID
    sr.PatientName = source.PatientName
    sr.Modality = "SR"
    sr.ValueType = "CONTAINER"
    sr.save_as(folder / "sr.dcm", enforce_file_format=True)
    return {"seg": str(seg), "sr": str(folder / "sr.dcm")}


def succeeded_job(store: JobStore, result_files: dict[str, str], node: str) -> JobRecord:
    record = JobRecord(
        state=JobState.SUCCEEDED,
        input_dir="/nonexistent",
        output_dir=str(Path(result_files["seg"]).parent),
        origin=Origin(kind=OriginKind.DICOM, calling_ae_title="PACS"),
        destinations=[node],
        deliveries={node: DeliveryRecord(dispatched_at=datetime.now(UTC))},
        result_files=result_files,
        finished_at=datetime.now(UTC),
    )
    return store.create(record)


def settings_for(*nodes: DicomNode) -> Settings:
    return Settings(
        redis=RedisSettings(url=REDIS_URL),
        dicom_nodes=list(nodes),
        delivery=DeliverySettings(
            first_retry_s=2.0, max_retry_s=8.0, give_up_after_s=60.0, timeout_s=5.0
        ),
    )


class StrictSCP:
    """A real storage SCP that counts what it receives and can refuse on request."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.refuse: dict[str, int] = {}  # SOP class UID -> status to answer, once
        self.ae = AE(ae_title="STRICT")
        for sop_class in (SegmentationStorage, Comprehensive3DSRStorage):
            self.ae.add_supported_context(sop_class, ExplicitVRLittleEndian)
        self.port = free_port()
        self.lock = threading.Lock()
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self.handle)]
        )

    def handle(self, event: evt.Event) -> int:
        sop_class = str(event.request.AffectedSOPClassUID)
        with self.lock:
            if sop_class in self.refuse:
                return self.refuse.pop(sop_class)
            self.received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def node(self) -> DicomNode:
        return DicomNode(name="strict", ae_title="STRICT", host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def strict_scp() -> Iterator[StrictSCP]:
    scp = StrictSCP()
    yield scp
    scp.stop()


@pytest.mark.integration
def test_results_reach_orthanc_and_are_not_sent_twice(
    store: JobStore, orthanc: Orthanc, shared_data: Path, tmp_path: Path
) -> None:
    node = DicomNode(name="pacs", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port)
    files = write_results(tmp_path / "out", shared_data)
    job = succeeded_job(store, files, "pacs")
    deliverer = Deliverer(store, settings_for(node))

    outcome = deliverer.deliver(job.id, "pacs")

    expected = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files.values()
    }
    assert outcome.state == DeliveryState.DONE
    assert set(outcome.sent) == expected
    assert orthanc.sop_instance_uids() == expected
    delivery = store.get(job.id).deliveries["pacs"]
    assert delivery.state == DeliveryState.DONE and delivery.attempts == 1
    assert set(delivery.delivered_sop_instance_uids) == expected

    again = deliverer.deliver(job.id, "pacs")  # a duplicate message
    assert again.state == DeliveryState.DONE and again.sent == []
    assert store.get(job.id).deliveries["pacs"].attempts == 1


@pytest.mark.integration
def test_orthanc_down_then_up_ends_delivered(
    store: JobStore, orthanc: Orthanc, shared_data: Path, tmp_path: Path
) -> None:
    node = DicomNode(name="pacs", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port)
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "pacs")
    deliverer = Deliverer(store, settings_for(node))
    orthanc.stop()

    first = deliverer.deliver(job.id, "pacs")
    assert first.state == DeliveryState.PENDING and first.retry_in_s == 2.0
    second = deliverer.deliver(job.id, "pacs")
    assert second.retry_in_s == 4.0  # exponential backoff
    delivery = store.get(job.id).deliveries["pacs"]
    assert delivery.attempts == 2 and delivery.next_attempt_at is not None
    assert "association with ORTHANC@127.0.0.1" in (delivery.last_error or "")

    orthanc.start()
    third = deliverer.deliver(job.id, "pacs")
    assert third.state == DeliveryState.DONE and len(third.sent) == 2
    delivery = store.get(job.id).deliveries["pacs"]
    assert delivery.last_error is None and delivery.next_attempt_at is None
    assert len(orthanc.sop_instance_uids()) == 2


@pytest.mark.integration
def test_a_partial_delivery_resumes_with_what_is_missing(
    store: JobStore, strict_scp: StrictSCP, shared_data: Path, tmp_path: Path
) -> None:
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "strict")
    deliverer = Deliverer(store, settings_for(strict_scp.node()))
    strict_scp.refuse[Comprehensive3DSRStorage] = 0xA700  # out of resources: transient

    first = deliverer.deliver(job.id, "strict")
    assert first.state == DeliveryState.PENDING and len(first.sent) == 1  # the SEG went
    assert "0xA700" in (store.get(job.id).deliveries["strict"].last_error or "")

    second = deliverer.deliver(job.id, "strict")
    assert second.state == DeliveryState.DONE and len(second.sent) == 1  # only the SR
    assert len(strict_scp.received) == 2 == len(set(strict_scp.received))


@pytest.mark.integration
def test_a_permanent_refusal_fails_the_delivery(
    store: JobStore, strict_scp: StrictSCP, shared_data: Path, tmp_path: Path
) -> None:
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "strict")
    strict_scp.refuse[SegmentationStorage] = 0xA900  # data set does not match SOP class
    outcome = Deliverer(store, settings_for(strict_scp.node())).deliver(job.id, "strict")
    assert outcome.state == DeliveryState.FAILED and outcome.retry_in_s is None
    delivery = store.get(job.id).deliveries["strict"]
    assert delivery.state == DeliveryState.FAILED and "0xA900" in (delivery.last_error or "")


@pytest.mark.integration
def test_gives_up_after_the_window(store: JobStore, shared_data: Path, tmp_path: Path) -> None:
    down = DicomNode(name="down", ae_title="DOWN", host="127.0.0.1", port=free_port())
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "down")
    later = datetime.now(UTC) + timedelta(seconds=59)  # the next wait would pass the window
    deliverer = Deliverer(store, settings_for(down), clock=lambda: later)
    outcome = deliverer.deliver(job.id, "down")
    assert outcome.state == DeliveryState.FAILED
    assert "gave up after 1 attempts" in (store.get(job.id).deliveries["down"].last_error or "")


@pytest.mark.integration
def test_unknown_node_and_unfinished_job_fail_with_reasons(
    store: JobStore, shared_data: Path, tmp_path: Path
) -> None:
    files = write_results(tmp_path / "out", shared_data)
    job = succeeded_job(store, files, "nowhere")
    outcome = Deliverer(store, settings_for()).deliver(job.id, "nowhere")
    assert outcome.state == DeliveryState.FAILED
    assert "no DICOM node named 'nowhere'" in (
        store.get(job.id).deliveries["nowhere"].last_error or ""
    )

    running = store.create(
        JobRecord(
            state=JobState.RUNNING, input_dir="/x", output_dir="/x",
            origin=Origin(kind=OriginKind.REST), destinations=["nowhere"],
        )
    )  # fmt: skip
    assert Deliverer(store, settings_for()).deliver(running.id, "nowhere").state == (
        DeliveryState.FAILED
    )
    assert "not succeeded" in (store.get(running.id).deliveries["nowhere"].last_error or "")


@pytest.mark.integration
def test_a_second_attempt_waits_while_one_is_sending(
    store: JobStore, strict_scp: StrictSCP, shared_data: Path, tmp_path: Path
) -> None:
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "strict")
    held = delivery_lease(store.redis, store.keys, job.id, "strict", ttl_s=30)
    assert held.acquire()
    outcome = Deliverer(store, settings_for(strict_scp.node())).deliver(job.id, "strict")
    assert outcome.sent == [] and outcome.retry_in_s is not None and outcome.retry_in_s > 20
    assert strict_scp.received == []
    held.release()
    assert Deliverer(store, settings_for(strict_scp.node())).deliver(job.id, "strict").state == (
        DeliveryState.DONE
    )


@pytest.mark.integration
def test_a_delivery_taken_over_sends_nothing_more(
    store: JobStore, strict_scp: StrictSCP, shared_data: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    job = succeeded_job(store, write_results(tmp_path / "out", shared_data), "strict")
    settings = settings_for(strict_scp.node())
    key = delivery_lease(store.redis, store.keys, job.id, "strict", 1).name
    b_outcomes = []

    def a_sends(
        node: DicomNode,
        instances: list[ResultInstance],
        confirmed: Callable[[str], None],
        check: Callable[[], None],
    ) -> None:
        store.redis.delete(key)  # A stalled before its first C-STORE; its lease lapsed
        b_outcomes.append(Deliverer(store, settings).deliver(job.id, "strict"))  # B takes over
        CStoreSender(settings.delivery).send(node, instances, confirmed, check)  # A wakes up

    with caplog.at_level(logging.WARNING):
        a = Deliverer(store, settings, send=a_sends).deliver(job.id, "strict")
    assert a.sent == []
    assert any("refused, the lease was taken over" in r.message for r in caplog.records)
    assert any("another attempt took it over" in r.message for r in caplog.records)
    [b] = b_outcomes
    assert b.state == DeliveryState.DONE and len(b.sent) == 2
    assert sorted(strict_scp.received) == sorted(b.sent)  # each instance once, from B
    delivery = store.get(job.id).deliveries["strict"]
    assert delivery.state == DeliveryState.DONE and len(delivery.delivered_sop_instance_uids) == 2
