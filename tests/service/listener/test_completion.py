"""Study completion: quiet period, batches, re-sent instances, refusals, retries, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest

from habitus.errors import NoSuitableSeries
from habitus.jobs import JobStore, Origin, OriginKind
from habitus.settings import ListenerSettings, Settings
from service.listener import Listener
from service.listener.completion import CompletionTracker
from service.listener.spool import Batch, BatchRecord, SeriesKey, Spool, check_uid
from service.submission import submit_study
from tests.service.support import write_ct_series

ORIGIN = Origin(kind=OriginKind.DICOM, calling_ae_title="PACS", peer_host="10.0.0.5")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Submissions:
    """Records each submission's files; can be told to fail like the real one does."""

    def __init__(self) -> None:
        self.files: list[dict[str, bytes]] = []
        self.failure: Exception | None = None

    def __call__(self, study_dir: Path, origin: Origin) -> list[str]:
        assert origin == ORIGIN
        if self.failure is not None:
            raise self.failure
        self.files.append(
            {str(p.relative_to(study_dir)): p.read_bytes() for p in study_dir.rglob("*.dcm")}
        )
        return [f"job-{len(self.files)}"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def submissions() -> Submissions:
    return Submissions()


def make_tracker(
    spool_dir: Path, submissions: Submissions, clock: Clock, keep_refused_s: float = 86400.0
) -> CompletionTracker:
    counted: list[int] = []
    tracker = CompletionTracker(
        Spool(spool_dir, fsync=False),
        submissions,
        quiet_period_s=5.0,
        submit_retry_s=30.0,
        count_instances=counted.append,
        clock=clock,
        keep_refused_s=keep_refused_s,
    )
    tracker.counted = counted  # type: ignore[attr-defined]
    return tracker


def receive(tracker: CompletionTracker, study: str, series: str, sop: str, body: bytes) -> Path:
    tmp = tracker.spool.write_temp([body])
    return tracker.commit(tmp, SeriesKey(study, series), sop, ORIGIN)


def test_a_study_is_submitted_once_quiet_with_all_its_series(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 4
    receive(tracker, "1.1", "1.1.2", "1.1.2.1", b"b")
    clock.now += 4.9
    assert tracker.run_once() == []  # the second series arrived 4.9 s ago
    clock.now += 0.2
    (batch,) = tracker.run_once()
    assert batch.record.series_instance_uids == ["1.1.1", "1.1.2"]
    assert batch.record.instances == 2
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"a", "1.1.2/1.1.2.1.dcm": b"b"}]
    assert batch.record_path.exists() and not batch.directory.exists()
    assert '"state":"submitted"' in batch.record_path.read_text().replace(" ", "")
    assert tracker.run_once() == []  # nothing new: nothing submitted again
    assert tracker.counted == [2]  # type: ignore[attr-defined]


def test_studies_complete_independently(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 3
    receive(tracker, "2.2", "2.2.1", "2.2.1.1", b"c")
    clock.now += 2
    assert [b.record.study_instance_uid for b in tracker.run_once()] == ["1.1"]
    clock.now += 3
    assert [b.record.study_instance_uid for b in tracker.run_once()] == ["2.2"]


def test_a_resent_instance_replaces_its_copy_and_later_makes_a_new_batch(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"old")
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"new")  # sent twice before the study is quiet
    clock.now += 6
    tracker.run_once()
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"again")  # re-sent after submission
    clock.now += 6
    tracker.run_once()
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"new"}, {"1.1.1/1.1.1.1.dcm": b"again"}]


def test_a_refused_study_is_not_retried(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    submissions.failure = NoSuitableSeries("expected a CT series of 16 slices or more; found 1")
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 6
    (batch,) = tracker.run_once()
    record = batch.record_path.read_text()
    assert '"refused"' in record and "16 slices" in record
    assert (batch.directory / "1.1.1" / "1.1.1.1.dcm").read_bytes() == b"a"  # kept
    clock.now += 100
    submissions.failure = None
    assert tracker.run_once() == [] and submissions.files == []
    assert tracker.pending() == 0


REFUSAL = NoSuitableSeries("expected a CT series of 16 slices or more; found 2")


def read_record(batch: Batch) -> BatchRecord:
    return BatchRecord.model_validate_json(batch.record_path.read_bytes())


def refused_batch(tracker: CompletionTracker, submissions: Submissions, clock: Clock) -> Batch:
    """Study 1.1 with one instance (b"a"), gone quiet and refused."""
    submissions.failure = REFUSAL
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 6
    (batch,) = tracker.run_once()
    submissions.failure = None
    return batch


def test_a_later_part_of_a_refused_study_is_submitted_with_it(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    submissions.failure = REFUSAL
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    receive(tracker, "1.1", "1.1.1", "1.1.1.2", b"b")
    clock.now += 6
    (first,) = tracker.run_once()
    submissions.failure = None
    receive(tracker, "1.1", "1.1.1", "1.1.1.2", b"b again")  # a newer copy wins
    receive(tracker, "1.1", "1.1.1", "1.1.1.3", b"c")
    receive(tracker, "1.1", "1.1.2", "1.1.2.1", b"d")
    clock.now += 6
    (second,) = tracker.run_once()
    assert submissions.files == [
        {
            "1.1.1/1.1.1.1.dcm": b"a",
            "1.1.1/1.1.1.2.dcm": b"b again",
            "1.1.1/1.1.1.3.dcm": b"c",
            "1.1.2/1.1.2.1.dcm": b"d",
        }
    ]
    assert second.record.instances == 4
    assert second.record.series_instance_uids == ["1.1.1", "1.1.2"]
    assert read_record(second).merged_from == [first.record.batch_id]
    refused = read_record(first)
    assert refused.state == "merged" and refused.merged_into == second.record.batch_id
    assert refused.error is not None and "16 slices" in refused.error
    assert not first.directory.exists() and not any(tmp_path.rglob("*.dcm"))
    clock.now += 100
    assert tracker.run_once() == [] and len(submissions.files) == 1  # not submitted again


def test_a_series_refused_twice_is_submitted_whole_with_its_third_part(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    submissions.failure = REFUSAL
    batches = []
    for part, body in enumerate([b"a", b"b", b"c"], start=1):
        if part == 3:
            submissions.failure = None
        receive(tracker, "1.1", "1.1.1", f"1.1.1.{part}", body)
        clock.now += 6
        batches.extend(tracker.run_once())
    first, second, third = batches
    assert submissions.files == [
        {"1.1.1/1.1.1.1.dcm": b"a", "1.1.1/1.1.1.2.dcm": b"b", "1.1.1/1.1.1.3.dcm": b"c"}
    ]
    assert read_record(first).merged_into == second.record.batch_id
    assert read_record(second).merged_into == third.record.batch_id
    assert read_record(third).state == "submitted"


def test_a_refused_batch_only_joins_its_own_study(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    refused = refused_batch(tracker, submissions, clock)
    receive(tracker, "2.2", "2.2.1", "2.2.1.1", b"b")
    clock.now += 6
    tracker.run_once()
    assert submissions.files == [{"2.2.1/2.2.1.1.dcm": b"b"}]
    assert read_record(refused).state == "refused" and refused.directory.is_dir()


def test_refused_instances_are_removed_after_the_retention(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock, keep_refused_s=60.0)
    batch = refused_batch(tracker, submissions, clock)
    clock.now += 59
    tracker.run_once()
    assert batch.directory.is_dir()
    clock.now += 2
    tracker.run_once()
    assert not batch.directory.exists() and not any(tmp_path.rglob("*.dcm"))
    record = read_record(batch)  # the record stays, with the reason
    assert record.state == "refused" and record.error is not None and "16 slices" in record.error
    assert record.files_removed_at is not None
    submissions.failure = None
    receive(tracker, "1.1", "1.1.1", "1.1.1.2", b"b")  # a later part comes alone
    clock.now += 6
    (later,) = tracker.run_once()
    assert submissions.files == [{"1.1.1/1.1.1.2.dcm": b"b"}]
    assert later.record.merged_from == []


def test_a_restart_keeps_refused_batches_without_submitting_them(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    first = make_tracker(tmp_path, submissions, clock)
    refused = refused_batch(first, submissions, clock)
    first.stop()

    submissions.failure = None
    second = make_tracker(tmp_path, submissions, clock)
    second.recover()
    clock.now += 100
    assert second.run_once() == [] and submissions.files == []
    assert second.pending() == 0 and refused.directory.is_dir()
    receive(second, "1.1", "1.1.1", "1.1.1.2", b"b")  # the rest of the series, after the restart
    clock.now += 6
    (batch,) = second.run_once()
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"a", "1.1.1/1.1.1.2.dcm": b"b"}]
    assert read_record(refused).merged_into == batch.record.batch_id


def test_a_restart_removes_refused_instances_kept_long_enough(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    first = make_tracker(tmp_path, submissions, clock, keep_refused_s=3600.0)
    submissions.failure = REFUSAL
    receive(first, "1.1", "1.1.1", "1.1.1.1", b"a")
    receive(first, "2.2", "2.2.1", "2.2.1.1", b"b")
    clock.now += 6
    old, recent = first.run_once()
    # the first was refused two hours before the restart
    refused_at = datetime.now(UTC) - timedelta(hours=2)
    first.spool.save_batch(
        Batch(old.directory, read_record(old).model_copy(update={"refused_at": refused_at}))
    )

    second = make_tracker(tmp_path, submissions, clock, keep_refused_s=3600.0)
    second.recover()
    second.run_once()
    assert not old.directory.exists() and read_record(old).files_removed_at is not None
    assert recent.directory.is_dir() and read_record(recent).files_removed_at is None
    assert submissions.files == []


def test_the_listener_keeps_refused_instances_as_configured(tmp_path: Path) -> None:
    assert ListenerSettings.model_fields["keep_refused_s"].default == 86400
    settings = ListenerSettings(spool_dir=tmp_path, keep_refused_s=600)
    assert Listener(settings, Submissions()).tracker.keep_refused_s == 600


def test_a_series_sent_in_two_parts_becomes_one_job(
    tmp_path: Path, settings: Settings, store: JobStore
) -> None:
    """10 slices, a pause longer than the quiet period, then the other 14: refused (too few
    slices) at first, then analysed whole with the real series choice."""
    files = sorted(write_ct_series(tmp_path / "ct", slices=24, size=32))
    clock = Clock()
    tracker = CompletionTracker(
        Spool(tmp_path / "listener", fsync=False),
        lambda folder, origin: submit_study(
            folder, origin, settings=settings, store=store, send=lambda _: None
        ),
        quiet_period_s=10.0,
        quiet_after_release_s=2.0,
        clock=clock,
    )

    def send(part: list[Path], association: int) -> None:
        for path in part:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            key = SeriesKey(str(header.StudyInstanceUID), str(header.SeriesInstanceUID))
            tmp = tracker.spool.write_temp([path.read_bytes()])
            tracker.commit(tmp, key, str(header.SOPInstanceUID), ORIGIN, association)
        tracker.association_ended(association)

    send(files[:10], 1)
    clock.now += 3
    (first,) = tracker.run_once()
    assert read_record(first).state == "refused" and store.list() == []
    send(files[10:], 2)
    clock.now += 3
    (second,) = tracker.run_once()
    [job] = store.list()
    assert job.instances == 24 and read_record(second).job_ids == [job.id]
    assert read_record(first).merged_into == second.record.batch_id
    assert not any((tmp_path / "listener").rglob("*.dcm"))


def test_a_failed_submission_is_retried_later(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    submissions.failure = ConnectionError("Redis is down")
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 6
    tracker.run_once()
    assert tracker.pending() == 1
    submissions.failure = None
    clock.now += 29
    tracker.run_once()
    assert submissions.files == []  # the retry waits submit_retry_s
    clock.now += 2
    tracker.run_once()
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"a"}]
    assert tracker.pending() == 0


def test_a_restarted_listener_finishes_what_was_left(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    first = make_tracker(tmp_path, submissions, clock)
    # a batch taken but not submitted (the process died during submission) ...
    submissions.failure = ConnectionError("Redis is down")
    receive(first, "1.1", "1.1.1", "1.1.1.1", b"a")
    clock.now += 6
    first.run_once()
    # ... instances received but not yet batched, and a partial write
    receive(first, "2.2", "2.2.1", "2.2.1.1", b"b")
    (tmp_path / "tmp" / "dead.part").write_bytes(b"half")

    submissions.failure = None
    second = make_tracker(tmp_path, submissions, clock)
    second.recover()
    assert not (tmp_path / "tmp" / "dead.part").exists()
    second.run_once()
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"a"}]  # the pending batch at once
    clock.now += 6  # the unbatched study gets a full quiet period after the restart
    second.run_once()
    assert submissions.files[1] == {"2.2.1/2.2.1.1.dcm": b"b"}


def test_a_crash_while_a_batch_is_taken_loses_no_instance(
    tmp_path: Path, submissions: Submissions, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.listener import spool as spool_module

    first = make_tracker(tmp_path, submissions, clock)
    receive(first, "1.1", "1.1.1", "1.1.1.1", b"a")
    receive(first, "1.1", "1.1.2", "1.1.2.1", b"b")
    clock.now += 6
    moves = 0
    real_move = spool_module._move_instances

    def move_then_die(*args: object, **kwargs: object) -> None:
        nonlocal moves
        moves += 1
        if moves == 2:  # the process dies after moving the first series
            raise SystemExit("killed")
        real_move(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spool_module, "_move_instances", move_then_die)
    with pytest.raises(SystemExit):
        first.run_once()
    monkeypatch.setattr(spool_module, "_move_instances", real_move)

    second = make_tracker(tmp_path, submissions, clock)
    second.recover()
    second.run_once()  # the batch recorded before its files moved: what reached it
    clock.now += 6
    second.run_once()  # what stayed in received/, after a quiet period
    received = [name for files in submissions.files for name in files]
    assert sorted(received) == ["1.1.1/1.1.1.1.dcm", "1.1.2/1.1.2.1.dcm"]


def test_stop_with_flush_submits_without_waiting(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = make_tracker(tmp_path, submissions, clock)
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    tracker.stop(flush=True)
    assert submissions.files == [{"1.1.1/1.1.1.1.dcm": b"a"}]


def test_a_counter_failure_keeps_the_count(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    counted: list[int] = []
    down = True

    def count(n: int) -> None:
        if down:
            raise ConnectionError("Redis is down")
        counted.append(n)

    tracker = CompletionTracker(
        Spool(tmp_path, fsync=False), submissions, 5.0, count_instances=count, clock=clock
    )
    receive(tracker, "1.1", "1.1.1", "1.1.1.1", b"a")
    tracker.run_once()
    receive(tracker, "1.1", "1.1.1", "1.1.1.2", b"b")
    down = False
    tracker.run_once()
    assert counted == [2]


@pytest.mark.parametrize("bad", ["", "../etc", "1.2/3", "1.2.", "a.b", "1" * 65, "1..2"])
def test_only_uids_become_path_components(bad: str) -> None:
    from habitus.errors import InputRefused

    with pytest.raises(InputRefused, match="must be a DICOM UID"):
        check_uid(bad, "Series Instance UID")


def test_a_uid_with_trailing_padding_is_accepted() -> None:
    assert check_uid("1.2.840.10008\x00", "SOP Instance UID") == "1.2.840.10008"


def test_a_released_sender_shortens_the_wait(
    tmp_path: Path, submissions: Submissions, clock: Clock
) -> None:
    tracker = CompletionTracker(
        Spool(tmp_path, fsync=False), submissions, 5.0, quiet_after_release_s=1.0, clock=clock
    )
    tmp = tracker.spool.write_temp([b"a"])
    tracker.commit(tmp, SeriesKey("1.1", "1.1.1"), "1.1.1.1", ORIGIN, association=7)
    clock.now += 2
    assert tracker.run_once() == []  # the association is still open: the full 5 s apply
    tracker.association_ended(7)
    (batch,) = tracker.run_once()  # released 2 s after the last instance: enough
    assert batch.record.instances == 1
