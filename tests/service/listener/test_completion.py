"""Study completion: quiet period, batches, re-sent instances, refusals, retries, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from habitus.errors import NoSuitableSeries
from habitus.jobs import Origin, OriginKind
from service.listener.completion import CompletionTracker
from service.listener.spool import SeriesKey, Spool, check_uid

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


def make_tracker(spool_dir: Path, submissions: Submissions, clock: Clock) -> CompletionTracker:
    counted: list[int] = []
    tracker = CompletionTracker(
        Spool(spool_dir, fsync=False),
        submissions,
        quiet_period_s=5.0,
        submit_retry_s=30.0,
        count_instances=counted.append,
        clock=clock,
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
    clock.now += 100
    submissions.failure = None
    assert tracker.run_once() == [] and submissions.files == []
    assert tracker.pending() == 0


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
