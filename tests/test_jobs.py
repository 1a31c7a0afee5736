"""The job contract over a real Redis: records, transitions, concurrency, indexes, metrics."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from habitus.jobs import (
    DeliveryState,
    JobConflictError,
    JobCursorError,
    JobNotFoundError,
    JobRecord,
    JobState,
    JobStore,
    Origin,
    OriginKind,
    Precondition,
    default_destinations,
)
from habitus.nodes import DicomNode
from tests.service.support import redis_client_fixture, store_fixture  # noqa: F401


def new_job(series_uid: str = "1.2.3", **fields: object) -> JobRecord:
    return JobRecord(
        input_dir="/spool/in",
        output_dir="/spool/out",
        origin=Origin(kind=OriginKind.REST),
        series_instance_uid=series_uid,
        **fields,  # type: ignore[arg-type]
    )


def test_create_get_and_list_by_state(store: JobStore) -> None:
    first = store.create(new_job("1.1"))
    second = store.create(new_job("1.2"))
    store.transition(second.id, JobState.RUNNING)
    assert store.get(first.id).state == JobState.QUEUED
    assert [j.id for j in store.list()] == [second.id, first.id]  # newest first
    assert [j.id for j in store.list(JobState.RUNNING)] == [second.id]
    assert store.count_by_state()[JobState.QUEUED] == 1
    assert store.latest_for_series("1.2") is not None
    assert store.get(first.id).history[0].state == JobState.QUEUED


def test_creating_an_existing_id_is_a_conflict(store: JobStore) -> None:
    job = store.create(new_job())
    with pytest.raises(JobConflictError):
        store.create(job)


def test_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="no job with id"):
        store.get("nope")


def test_transitions_follow_the_state_machine(store: JobStore) -> None:
    job = store.create(new_job())
    store.transition(job.id, JobState.RUNNING, expected={JobState.QUEUED})
    done = store.transition(job.id, JobState.SUCCEEDED)
    assert done.finished_at is not None
    assert [e.state for e in done.history] == [
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]
    with pytest.raises(JobConflictError, match="cannot go from succeeded to running"):
        store.transition(job.id, JobState.RUNNING)
    with pytest.raises(JobConflictError, match="expected one of: queued"):
        store.transition(job.id, JobState.CANCELLED, expected={JobState.QUEUED})
    assert store.count_by_state()[JobState.SUCCEEDED] == 1
    assert store.count_by_state()[JobState.RUNNING] == 0


def test_concurrent_updates_lose_nothing(store: JobStore) -> None:
    job = store.create(new_job())
    threads = 4
    per_thread = 25

    def add_warnings(name: str) -> None:
        for n in range(per_thread):
            warning = f"{name}-{n}"

            def add(record: JobRecord, w: str = warning) -> JobRecord:
                return record.model_copy(update={"warnings": [*record.warnings, w]})

            store.update(job.id, add)

    workers = [threading.Thread(target=add_warnings, args=(f"t{i}",)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(store.get(job.id).warnings) == threads * per_thread


def test_a_precondition_is_checked_in_the_same_transaction_as_the_write(
    store: JobStore,
) -> None:
    job = store.create(new_job())
    guard = f"{store.keys.prefix}guard"
    store.redis.set(guard, "1")

    def still_one(values: Mapping[str, bytes | str | None]) -> None:
        if values[guard] not in (b"1", "1"):
            raise JobConflictError(f"guard is {values[guard]!r}")

    calls = 0

    def note_and_move_the_guard(record: JobRecord) -> JobRecord:
        # another client changes the guarded key after the check, before the commit
        nonlocal calls
        calls += 1
        store.redis.set(guard, "2")
        return record.model_copy(update={"warnings": ["written"]})

    precondition = Precondition(keys=(guard,), check=still_one)
    with pytest.raises(JobConflictError, match="guard is b'2'"):
        store.update(job.id, note_and_move_the_guard, precondition=precondition)
    assert calls == 1  # the first try was not committed; the second was refused by the check
    assert store.get(job.id).warnings == []
    store.redis.set(guard, "1")
    assert store.update(job.id, lambda r: r, precondition=precondition).id == job.id
    store.redis.delete(guard)


def test_delivery_updates_are_per_node(store: JobStore) -> None:
    job = store.create(new_job(destinations=["a", "b"]))
    store.update_delivery(
        job.id, "a", lambda d: d.model_copy(update={"state": DeliveryState.DONE, "attempts": 1})
    )
    record = store.get(job.id)
    assert record.deliveries["a"].state == DeliveryState.DONE
    assert record.deliveries["a"].updated_at is not None
    assert "b" not in record.deliveries


def test_delete_keeps_a_newer_version_as_latest_of_its_series(store: JobStore) -> None:
    old = store.create(new_job("9.9"))
    newer = store.create(new_job("9.9", version=2, supersedes=old.id))
    store.delete(old.id)
    latest = store.latest_for_series("9.9")
    assert latest is not None and latest.id == newer.id
    store.delete(newer.id)
    assert store.latest_for_series("9.9") is None
    assert store.list() == []


def test_stage_histogram_is_cumulative(store: JobStore) -> None:
    store.observe_stage_seconds("segment", 3.0)
    store.observe_stage_seconds("segment", 40.0)
    histogram = store.stage_seconds()["segment"]
    counts = dict(histogram.buckets)
    assert counts[2.5] == 0 and counts[5] == 1 and counts[60] == 2
    assert histogram.count == 2 and histogram.sum == pytest.approx(43.0)


def test_default_destination_is_the_sending_node_when_known() -> None:
    nodes = [DicomNode(name="main", ae_title="PACS1", host="h", port=104)]
    dicom = Origin(kind=OriginKind.DICOM, calling_ae_title="PACS1 ")
    assert default_destinations(dicom, nodes) == ["main"]
    stranger = Origin(kind=OriginKind.DICOM, calling_ae_title="MODALITY")
    assert default_destinations(stranger, nodes) == []
    assert default_destinations(Origin(kind=OriginKind.REST), nodes) == []


def test_a_study_lists_the_series_that_had_jobs(store: JobStore) -> None:
    store.create(new_job("5.1", study_instance_uid="5"))
    store.create(new_job("5.1", study_instance_uid="5"))  # a second version
    store.create(new_job("5.2", study_instance_uid="5"))
    store.create(new_job("6.1", study_instance_uid="6"))
    assert store.series_of_study("5") == {"5.1", "5.2"}
    assert store.series_of_study("7") == set()


@pytest.mark.parametrize(
    ("path", "ending"),
    [
        ([JobState.CANCELLED], "cancelled"),  # cancelled while queued
        ([JobState.RUNNING, JobState.FAILED], "failed"),
        ([JobState.RUNNING, JobState.CANCELLED], "cancelled"),
    ],
)
def test_a_job_ending_without_results_says_its_deliveries_were_skipped(
    store: JobStore, path: list[JobState], ending: str
) -> None:
    job = store.create(new_job(destinations=["PACS"], deliveries={"PACS": {}}))
    for state in path:
        store.transition(job.id, state)
    delivery = store.get(job.id).deliveries["PACS"]
    assert delivery.state == DeliveryState.SKIPPED
    assert delivery.last_error == f"nothing sent: the job {ending} without results"


def test_a_succeeded_job_keeps_its_deliveries_pending_until_sent(store: JobStore) -> None:
    job = store.create(new_job(destinations=["PACS"], deliveries={"PACS": {}}))
    store.transition(job.id, JobState.RUNNING)
    store.transition(job.id, JobState.SUCCEEDED)
    assert store.get(job.id).deliveries["PACS"].state == DeliveryState.PENDING


def test_an_id_that_is_not_a_job_id_names_no_key(store: JobStore) -> None:
    job = new_job()
    store.create(job)
    store.redis.set(f"{store.job_key(job.id)}:lease", "a worker's token")
    for bad in (f"{job.id}:lease", "*", "", job.id.upper(), "../" + job.id):
        with pytest.raises(JobNotFoundError, match="32 hexadecimal digits"):
            store.get(bad)
        with pytest.raises(JobNotFoundError, match="32 hexadecimal digits"):
            store.update(bad, lambda record: record)
    assert store.get(job.id).id == job.id


# --- owners and pages -------------------------------------------------------------------------


def test_a_job_belongs_to_its_key_or_to_the_sending_node() -> None:
    def of(origin: Origin) -> JobRecord:
        return JobRecord(input_dir="i", output_dir="o", origin=origin)

    rest = of(Origin(kind=OriginKind.REST, client="ris"))
    assert rest.owner == "ris"
    assert of(Origin(kind=OriginKind.DICOM, calling_ae_title="PACS1 ")).owner == "node:PACS1"
    assert of(Origin(kind=OriginKind.REST)).owner == "anonymous"
    # a record stored before jobs had owners gets its owner from its origin
    stored = rest.model_dump(mode="json")
    del stored["owner"]
    assert JobRecord.model_validate(stored).owner == "ris"


def walk(store: JobStore, limit: int, **filters: object) -> list[str]:
    """Every job id of a listing, page after page."""
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = store.page(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the listing did not end")


def test_pages_list_every_job_once_newest_first(store: JobStore) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = []
    for n in range(230):  # more than one scan batch; every tenth shares its neighbour's time
        created = base + timedelta(seconds=n - n % 10 // 9)
        owner = "ris" if n % 3 == 0 else "other"
        jobs.append(store.create(new_job(f"1.{n}", created_at=created, owner=owner)))
    for job in jobs[::4]:
        store.transition(job.id, JobState.RUNNING)
    newest_first = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    for limit in (1, 7, 100, 1000):
        assert walk(store, limit) == newest_first
    running = {j.id for j in jobs[::4]}
    assert walk(store, 9, state=JobState.RUNNING) == [i for i in newest_first if i in running]
    own = {j.id for j in jobs if j.owner == "ris"}
    assert walk(store, 5, owner="ris") == [i for i in newest_first if i in own]
    last = store.page(limit=len(jobs))
    assert len(last.jobs) == len(jobs) and last.next_cursor is None


def test_a_filtered_page_reads_a_bounded_part_of_the_index(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("habitus.jobs.PAGE_SCAN_BUDGET", 10)
    jobs = [store.create(new_job(f"2.{n}")) for n in range(25)]
    store.transition(jobs[0].id, JobState.RUNNING)  # the oldest: 24 entries from the top
    first = store.page(state=JobState.RUNNING, limit=5)
    assert first.jobs == [] and first.next_cursor is not None  # short page, not the whole index
    assert walk(store, 5, state=JobState.RUNNING) == [jobs[0].id]


def test_a_cursor_that_a_listing_did_not_give_is_refused(store: JobStore) -> None:
    for bad in ("", "abc", "1.5-" + "g" * 32, "1e400-" + "0" * 32, "x" * 500):
        with pytest.raises(JobCursorError, match="expected a cursor"):
            store.page(cursor=bad)


def test_delete_removes_the_job_from_its_owners_pages(store: JobStore) -> None:
    job = store.create(new_job(owner="ris"))
    store.delete(job.id)
    assert store.page(owner="ris").jobs == []
    assert store.redis.exists(store.owner_key("ris")) == 0


def test_jobs_stored_before_owners_are_indexed_by_owner_once(store: JobStore) -> None:
    old = store.create(new_job("3.1", owner="ris"))
    store.redis.delete(store.owner_key("ris"))  # as a store written before owners existed
    store.redis.set(store.job_key("f" * 32), "{damaged")
    store.redis.zadd(store.index_key, {"f" * 32: 1.0})
    assert store.page(owner="ris").jobs == []
    assert store.index_owners() == 1
    assert [j.id for j in store.page(owner="ris").jobs] == [old.id]
    store.redis.delete(store.owner_key("ris"))
    assert store.index_owners() == 0  # once per store: new jobs are indexed as created
