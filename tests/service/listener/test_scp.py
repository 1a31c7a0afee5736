"""The C-ECHO / C-STORE SCP against real SCUs (pynetdicom and dcmtk's storescu)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedPETImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    PositronEmissionTomographyImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from habitus.jobs import JobStore
from habitus.nodes import DicomNode
from service.listener.statuses import StoreStatus
from tests.conftest import missing
from tests.e2e.instances import ct_series, ct_slice, restore_uids, secondary_capture
from tests.polling import wait_for
from tests.service.listener.conftest import StartListener

STORESCU = Path("/usr/bin/storescu")


def storescu(port: int, *arguments: str) -> list[str]:
    """dcmtk's storescu sending as TESTSCU to the listener's AE title on this host."""
    return [str(STORESCU), "-aet", "TESTSCU", "-aec", "HABITUS", *arguments, "127.0.0.1", str(port)]


def scu(ae_title: str = "TESTSCU") -> AE:
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(Verification)
    ae.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    # one context per transfer syntax, so each instance travels in the one it is encoded in
    for transfer_syntax in (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        EnhancedPETImageStorage,
        JPEG2000Lossless,
        RLELossless,
    ):
        ae.add_requested_context(CTImageStorage, transfer_syntax)
    return ae


def spooled(listener) -> set[str]:
    return {p.stem for p in listener.spool.received_dir.rglob("*.dcm")}


def test_echo_succeeds_for_an_allowed_ae(start_listener: StartListener) -> None:
    listener, _ = start_listener()
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_unknown_calling_ae_is_rejected(start_listener: StartListener) -> None:
    listener, _ = start_listener()
    assoc = scu("STRANGER").associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.is_rejected
    assert not assoc.is_established


def test_known_node_ae_is_allowed_and_host_checked(start_listener: StartListener) -> None:
    nodes = [
        DicomNode(name="pacs", ae_title="PACS", host="127.0.0.1", port=4242),
        DicomNode(name="far", ae_title="FARPACS", host="192.0.2.10", port=4242),
    ]
    listener, _ = start_listener(nodes=nodes, allowed_ae_titles=[])  # host checked by default
    near = scu("PACS").associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert near.is_established
    near.release()
    # the right AE title from the wrong host
    assert scu("FARPACS").associate("127.0.0.1", listener.port, ae_title="HABITUS").is_rejected


def test_an_association_addressed_to_another_ae_title_is_rejected_by_default(
    start_listener: StartListener,
) -> None:
    listener, _ = start_listener()
    assert scu().associate("127.0.0.1", listener.port, ae_title="OTHERNODE").is_rejected
    assert scu().associate("127.0.0.1", listener.port).is_rejected  # pynetdicom's ANY-SCP


def test_any_ae_when_allowed_with_a_star(start_listener: StartListener) -> None:
    listener, _ = start_listener(allowed_ae_titles=["*"])
    assoc = scu("ANYONE").associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.is_established
    assoc.release()


@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian],
)
def test_store_writes_the_instance_as_sent(
    start_listener: StartListener, transfer_syntax: str
) -> None:
    listener, submissions = start_listener()
    series = ct_series(3)
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    for ds in series:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        assert assoc.send_c_store(ds).Status == StoreStatus.SUCCESS
    assoc.release()

    # the study goes quiet: one submission holding the whole series, with its origin
    assert submissions.arrived.wait(10)
    study_dir, origin = submissions.calls[0]
    assert origin.calling_ae_title == "TESTSCU"
    assert origin.called_ae_title == "HABITUS"
    assert origin.peer_host == "127.0.0.1"
    received = submissions.instances[0]
    assert sorted(received) == sorted(ds.SOPInstanceUID for ds in series)
    stored = received[series[1].SOPInstanceUID]
    assert stored.file_meta.TransferSyntaxUID == transfer_syntax
    assert stored.file_meta.SourceApplicationEntityTitle == "TESTSCU"
    assert stored.StudyInstanceUID == series[1].StudyInstanceUID
    assert stored.pixel_array.tolist() == series[1].pixel_array.tolist()
    # the batch is gone once submitted, its record stays; nothing half-written is left
    wait_for(lambda: not study_dir.exists())
    assert not list(listener.spool.tmp_dir.iterdir())
    assert not list(listener.spool.received_dir.iterdir())


def test_a_study_is_submitted_soon_after_its_association_is_released(
    start_listener: StartListener,
) -> None:
    listener, submissions = start_listener(quiet_period_s=60, quiet_after_release_s=0.3)
    series = ct_series(2)
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    for ds in series:
        assert assoc.send_c_store(ds).Status == StoreStatus.SUCCESS
    time.sleep(1.0)
    assert submissions.calls == []  # open association: the 60 s quiet period applies
    assoc.release()
    assert submissions.arrived.wait(10)
    assert sorted(submissions.instances[0]) == sorted(ds.SOPInstanceUID for ds in series)


def test_corrupt_and_refused_instances_fail_while_the_association_goes_on(
    start_listener: StartListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener, _ = start_listener(quiet_period_s=60)
    good = ct_series(2)
    study = good[0].StudyInstanceUID

    # a file whose data set is cut in the middle of an element, sent byte for byte
    corrupt = ct_slice(study, good[0].SeriesInstanceUID, 5)
    corrupt_path = tmp_path / "corrupt.dcm"
    corrupt.save_as(corrupt_path, enforce_file_format=True)
    raw = corrupt_path.read_bytes()
    cut = raw.index(b"\x20\x00\x0d\x00")  # StudyInstanceUID tag
    corrupt_path.write_bytes(raw[: cut + 4] + b"UI\xff\x7f" + b"1.2" * 3)

    no_uids = ct_slice(study, good[0].SeriesInstanceUID, 6)
    no_uids.SeriesInstanceUID = ""
    no_pixels = ct_slice(study, good[0].SeriesInstanceUID, 7)
    del no_pixels.PixelData
    traversal = ct_slice(study, "../../etc", 8)

    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.send_c_store(good[0]).Status == StoreStatus.SUCCESS
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    assert assoc.send_c_store(corrupt_path).Status == StoreStatus.ERROR_CANNOT_UNDERSTAND
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", False)
    assert assoc.send_c_store(secondary_capture(study)).Status == (
        StoreStatus.REFUSED_SOP_CLASS_NOT_SUPPORTED
    )
    for refused in (no_uids, no_pixels, traversal):
        status = assoc.send_c_store(refused).Status
        assert status == StoreStatus.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert assoc.send_c_store(good[1]).Status == StoreStatus.SUCCESS
    assert assoc.is_established
    assoc.release()
    assert spooled(listener) == {ds.SOPInstanceUID for ds in good}


@pytest.mark.parametrize(
    "pet_class", [PositronEmissionTomographyImageStorage, EnhancedPETImageStorage]
)
def test_pet_is_kept_by_default(
    start_listener: StartListener, tmp_path: Path, pet_class: str
) -> None:
    """PET-CT studies keep their PET unless a site narrows the stored modalities."""
    pet = ct_slice(generate_uid(), generate_uid(), 0, sop_class_uid=pet_class, modality="PT")
    for name, overrides, expected in (
        ("default", {}, StoreStatus.SUCCESS),
        ("ct-only", {"stored_modalities": ["CT"]}, StoreStatus.REFUSED_SOP_CLASS_NOT_SUPPORTED),
    ):
        # a long quiet period: the instance stays in the spool to be looked at
        listener, _ = start_listener(spool_dir=tmp_path / name, quiet_period_s=60, **overrides)
        ae = scu()
        ae.add_requested_context(pet_class, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", listener.port, ae_title="HABITUS")
        assert assoc.is_established
        assert pet_class in {cx.abstract_syntax for cx in assoc.accepted_contexts}
        assert assoc.send_c_store(pet).Status == expected
        assoc.release()
        listener.stop()
        kept = {pet.SOPInstanceUID} if expected == StoreStatus.SUCCESS else set()
        assert spooled(listener) == kept


def test_resent_instance_replaces_its_copy(start_listener: StartListener) -> None:
    listener, _ = start_listener(quiet_period_s=60)
    first = ct_series(1)[0]
    again = ct_slice(
        first.StudyInstanceUID, first.SeriesInstanceUID, 0, sop_uid=first.SOPInstanceUID
    )
    again.PixelData = b"\x01\x00" * (again.Rows * again.Columns)
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
    assert assoc.send_c_store(first).Status == StoreStatus.SUCCESS
    assert assoc.send_c_store(again).Status == StoreStatus.SUCCESS
    assoc.release()
    files = list(listener.spool.received_dir.rglob("*.dcm"))
    assert len(files) == 1
    assert pydicom.dcmread(files[0]).PixelData == again.PixelData


@pytest.mark.integration
def test_storescu_sends_the_real_jpeg2000_series(
    start_listener: StartListener, shared_data: Path, tmp_path: Path
) -> None:
    if not STORESCU.exists():
        missing("dcmtk's storescu is not installed")
    listener, submissions = start_listener(quiet_period_s=60)
    files = restore_uids(shared_data / "ts-petct-dicom" / "series", tmp_path / "in")
    result = subprocess.run(
        [*storescu(listener.port, "-xv"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert spooled(listener) == {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files
    }
    stored = next(listener.spool.received_dir.rglob("*.dcm"))
    assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == JPEG2000Lossless


@pytest.mark.integration
def test_instances_received_counter_is_incremented(tmp_path: Path, store: JobStore) -> None:
    from habitus.settings import ListenerSettings
    from service.listener import Listener

    settings = ListenerSettings(
        host="127.0.0.1",
        port=0,
        spool_dir=tmp_path / "spool",
        allowed_ae_titles=["TESTSCU"],
        quiet_period_s=0.2,
        poll_interval_s=0.05,
    )
    listener = Listener(
        settings, lambda d, o: [], count_instances=store.increment_instances_received, fsync=False
    ).start()
    try:
        assoc = scu().associate("127.0.0.1", listener.port, ae_title="HABITUS")
        for ds in ct_series(5):
            assoc.send_c_store(ds)
        assoc.release()
        wait_for(lambda: store.instances_received() == 5)
    finally:
        listener.stop()
