"""submit_study: series choice, one job per chosen series, versions, destinations, queueing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from habitus.errors import InputRefused
from habitus.jobs import ANALYZE_QUEUE, JobState, JobStore, Origin, OriginKind
from habitus.settings import Settings
from service.listener.completion import CompletionTracker
from service.listener.spool import BatchRecord, SeriesKey, Spool
from service.submission import JobOptions, LateSeriesSkipped, submit_study
from tests.service.support import write_ct_series

DICOM_FROM_PACS = Origin(kind=OriginKind.DICOM, calling_ae_title="PACS", peer_host="127.0.0.1")


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A CT series and a 3-slice localizer-like series of the same study."""
    folder = tmp_path / "study"
    files = write_ct_series(folder / "ct", slices=20, size=32)
    study_uid = pydicom.dcmread(files[0]).StudyInstanceUID
    write_ct_series(folder / "scout", slices=3, size=32, study_uid=study_uid, series_number=2)
    return folder


def test_one_job_for_the_chosen_series(study: Path, settings: Settings, store: JobStore) -> None:
    sent: list[str] = []
    job_ids = submit_study(
        study, DICOM_FROM_PACS, options=JobOptions(sex="F"), settings=settings, store=store,
        send=sent.append,
    )  # fmt: skip
    assert job_ids == sent and len(job_ids) == 1
    job = store.get(job_ids[0])
    assert job.instances == 20 and job.version == 1
    assert job.destinations == ["pacs"] and job.deliveries["pacs"].state == "pending"
    assert job.options == {"sex": "F"}
    assert len(list(Path(job.input_dir).glob("*.dcm"))) == 20
    assert len(list(study.rglob("*.dcm"))) == 23  # the caller's folder is left as it was


def test_unknown_sender_gets_no_destination(
    study: Path, settings: Settings, store: JobStore
) -> None:
    origin = Origin(kind=OriginKind.DICOM, calling_ae_title="MODALITY1")
    [job_id] = submit_study(study, origin, settings=settings, store=store, send=lambda _: None)
    assert store.get(job_id).destinations == []


def test_sends_the_analyze_task_to_the_broker(
    study: Path, settings: Settings, store: JobStore
) -> None:
    submit_study(study, Origin(kind=OriginKind.REST), settings=settings, store=store)
    assert store.redis.llen(store.keys.queue(ANALYZE_QUEUE)) == 1


def analysed_job(study: Path, settings: Settings, store: JobStore) -> str:
    """The job of ``study`` submitted from PACS and run to success."""
    [job_id] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    store.transition(job_id, JobState.RUNNING)
    store.transition(job_id, JobState.SUCCEEDED)
    return job_id


def resent_slices(study: Path, tmp_path: Path, count: int = 3) -> Path:
    """A folder with the first ``count`` slices of the study's series, as PACS sends again."""
    resent = tmp_path / "resent"
    resent.mkdir(parents=True)
    for path in sorted((study / "ct").iterdir())[:count]:
        shutil.copy(path, resent / path.name)
    return resent


def test_instances_received_again_make_a_new_version(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    first = analysed_job(study, settings, store)
    # PACS sends three slices of the series again: too few to be a series on their own
    [second] = submit_study(
        resent_slices(study, tmp_path), DICOM_FROM_PACS, settings=settings, store=store,
        send=lambda _: None,
    )  # fmt: skip
    job = store.get(second)
    assert second != first and job.version == 2 and job.supersedes == first
    assert job.instances == 20  # the earlier instances completed the series
    assert store.get(first).state == JobState.SUCCEEDED
    latest = store.latest_for_series(job.series_instance_uid or "")
    assert latest is not None and latest.id == second


def test_an_unfinished_previous_version_is_stopped(
    study: Path, settings: Settings, store: JobStore
) -> None:
    [queued] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    [newer] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    assert store.get(queued).state == JobState.CANCELLED
    assert "superseded by version 2" in store.get(queued).history[-1].note
    assert f"superseded by version 2 (job {newer})" == store.get(queued).error  # over REST
    store.transition(newer, JobState.RUNNING)
    [newest] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    running = store.get(newer)
    assert running.state == JobState.RUNNING and running.cancel_requested
    assert running.cancel_reason == f"superseded by version 3 (job {newest})"


def test_a_new_version_keeps_the_previous_versions_destinations(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    [queued] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    # slices sent again by a modality that is not a known node: no destination of its own
    modality = Origin(kind=OriginKind.DICOM, calling_ae_title="MODALITY1")
    [newer] = submit_study(
        resent_slices(study, tmp_path), modality, settings=settings, store=store,
        send=lambda _: None,
    )  # fmt: skip
    assert store.get(queued).state == JobState.CANCELLED
    job = store.get(newer)
    assert job.version == 2 and job.destinations == ["pacs"]
    assert job.deliveries["pacs"].state == "pending"


def test_a_posted_study_stands_alone(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    [from_pacs] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    rest = Origin(kind=OriginKind.REST)
    # a client posts a few slices of the same series: analysed as posted, nothing cancelled
    with pytest.raises(InputRefused, match="slices"):
        submit_study(
            resent_slices(study, tmp_path), rest, settings=settings, store=store,
            send=lambda _: None,
        )  # fmt: skip
    [posted] = submit_study(study, rest, settings=settings, store=store, send=lambda _: None)
    job = store.get(posted)
    assert job.version == 1 and job.supersedes is None and job.instances == 20
    assert store.get(from_pacs).state == JobState.QUEUED
    # ... and instances PACS sends again extend the PACS job, not the posted one
    latest = store.latest_for_series(job.series_instance_uid or "")
    assert latest is not None and latest.id == from_pacs
    [newer] = submit_study(
        resent_slices(study, tmp_path / "again"), DICOM_FROM_PACS, settings=settings,
        store=store, send=lambda _: None,
    )  # fmt: skip
    assert store.get(newer).supersedes == from_pacs
    assert store.get(posted).state == JobState.QUEUED


def test_nothing_suitable_is_refused_with_reasons(
    tmp_path: Path, settings: Settings, store: JobStore
) -> None:
    write_ct_series(tmp_path / "scout", slices=3, size=16)
    with pytest.raises(InputRefused, match="fewer than the minimum"):
        submit_study(tmp_path, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(InputRefused, match="found none"):
        submit_study(tmp_path / "empty", DICOM_FROM_PACS, settings=settings, store=store)
    assert store.list() == []


def test_a_job_that_cannot_be_queued_is_failed(
    study: Path, settings: Settings, store: JobStore
) -> None:
    def broker_down(job_id: str) -> None:
        raise ConnectionError("broker unreachable")

    with pytest.raises(ConnectionError):
        submit_study(study, DICOM_FROM_PACS, settings=settings, store=store, send=broker_down)
    [job] = store.list()
    assert job.state == JobState.FAILED and "broker unreachable" in (job.error or "")


def late_series(study: Path, folder: Path, slices: int, series_number: int) -> Path:
    """A series of ``study`` sent on its own, after the study was submitted."""
    first = next((study / "ct").iterdir())
    study_uid = str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)
    write_ct_series(
        folder / "late", slices=slices, size=32, study_uid=study_uid,
        series_number=series_number, description="Late CT",
    )  # fmt: skip
    return folder


def test_a_late_series_that_ranks_lower_is_skipped_with_the_reason(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    first = analysed_job(study, settings, store)
    sent: list[str] = []
    lower = late_series(study, tmp_path / "lower", slices=18, series_number=3)
    with pytest.raises(LateSeriesSkipped) as skipped:
        submit_study(lower, DICOM_FROM_PACS, settings=settings, store=store, send=sent.append)
    reason = str(skipped.value)
    assert "already analysed from series 1 'Synthetic CT'" in reason and first in reason
    assert "series 3 'Late CT'" in reason and "more slices preferred (20 over 18)" in reason
    assert isinstance(skipped.value, InputRefused)  # recorded as the listener and API do
    assert sent == [] and [j.id for j in store.list()] == [first]

    # instances of the analysed series sent again still make a new version
    [second] = submit_study(
        resent_slices(study, tmp_path), DICOM_FROM_PACS, settings=settings, store=store,
        send=sent.append,
    )  # fmt: skip
    assert store.get(second).version == 2 and store.get(second).supersedes == first


def test_a_study_posted_over_rest_is_analysed_whatever_ran_before(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    first = analysed_job(study, settings, store)
    lower = late_series(study, tmp_path / "lower", slices=18, series_number=3)
    [posted] = submit_study(
        lower, Origin(kind=OriginKind.REST), settings=settings, store=store, send=lambda _: None
    )
    job = store.get(posted)
    assert posted != first and job.version == 1 and job.instances == 18


def test_a_late_series_that_ranks_higher_gets_its_own_job(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    [first] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    higher = late_series(study, tmp_path / "higher", slices=30, series_number=4)
    [late] = submit_study(
        higher, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    job = store.get(late)
    assert late != first and job.version == 1 and job.instances == 30
    assert job.study_instance_uid == store.get(first).study_instance_uid


def test_a_late_series_competes_only_with_series_not_failed(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    [first] = submit_study(
        study, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    store.transition(first, JobState.RUNNING)
    store.transition(first, JobState.FAILED, error="the analysis failed")
    lower = late_series(study, tmp_path / "lower", slices=18, series_number=3)
    [late] = submit_study(
        lower, DICOM_FROM_PACS, settings=settings, store=store, send=lambda _: None
    )
    assert store.get(late).instances == 18


def test_the_listener_records_a_skipped_late_series_with_its_batch(
    study: Path, settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    def submit(folder: Path, origin: Origin) -> list[str]:
        return submit_study(folder, origin, settings=settings, store=store, send=lambda _: None)

    [first] = submit(study, DICOM_FROM_PACS)
    tracker = CompletionTracker(Spool(tmp_path / "listener", fsync=False), submit, 5.0)
    for path in sorted((late_series(study, tmp_path / "lower", 18, 3) / "late").iterdir()):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        key = SeriesKey(str(header.StudyInstanceUID), str(header.SeriesInstanceUID))
        tmp = tracker.spool.write_temp([path.read_bytes()])
        tracker.commit(tmp, key, str(header.SOPInstanceUID), DICOM_FROM_PACS)
    [batch] = tracker.run_once(force=True)
    record = BatchRecord.model_validate_json(batch.record_path.read_bytes())
    assert record.state == "refused" and record.job_ids == []
    assert "not analysed" in (record.error or "") and first in (record.error or "")
    assert [j.id for j in store.list()] == [first]
