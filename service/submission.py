"""Queue a received study: choose its CT series and create one job per chosen series.

Used by the DICOM listener (once a study has gone quiet) and by the REST upload. The study
folder is left as it is: the chosen series' files are hard-linked (copied across file
systems) into each job's own input folder, named by SOP Instance UID, so the caller may
remove its folder afterwards.

Instances that PACS sends again for a series that already has a job make a new version of
that job, whose input is the previous version's instances with the new ones replacing those
of the same SOP Instance UID, and whose destinations are the previous version's plus the new
sender's. The previous version is cancelled if it has not finished, so a series never has
two results being produced at once.

A series that arrives after its study was analysed competes with the series analysed
then: the chooser sees both. It gets a job only if the chooser prefers it; otherwise it is
skipped with the chooser's reason (LateSeriesSkipped, recorded like any refusal).

The attenuation-corrected PET series of the chosen CT's study (judged from their headers by
``habitus.pet.find.header_failures``) travel in the job's input beside the CT, so that the
analysis measures uptake per tissue; the analysis makes the final choice of the PET. A PET
that PACS sends after its study's CT was analysed (or queued) makes a new version of that
CT's job, with the PET in its input.

All this holds for series routed by PACS, which arrive one by one and in parts. A study
posted over REST is a request for exactly what it holds: its chosen series is analysed from
the instances posted, in a job that stands alone. It neither extends, nor cancels, nor is
extended by another job, whoever posted or sent that one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from habitus.dicom.choose import Choice, SeriesVerdict, choose_series
from habitus.dicom.group import SeriesGroup, group_series
from habitus.dicom.read import Instance, scan_headers
from habitus.dicom.series_rules import SeriesRules
from habitus.dicom.sources import FileSource, collect_sources
from habitus.errors import HabitusError, InputRefused
from habitus.jobs import (
    DeliveryRecord,
    JobRecord,
    JobState,
    JobStore,
    Origin,
    OriginKind,
    default_destinations,
)
from habitus.pet.find import header_failures
from habitus.settings import Settings
from service.jobfiles import job_folder
from service.queue import job_store, send_analyze

log = logging.getLogger("service.submission")

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


class JobOptions(BaseModel):
    """Per-job analysis options; the worker turns them into habitus AnalysisOptions."""

    height_cm: float | None = None
    weight_kg: float | None = None
    sex: Literal["M", "F"] | None = None
    segmenter: Literal["auto", "model", "rules"] = "auto"


SendTask = Callable[[str], None]

# a series whose latest job ended so is no longer "analysed": a late series may replace it
_NOT_ANALYSED = frozenset({JobState.FAILED, JobState.CANCELLED})


class LateSeriesSkipped(InputRefused):
    """A series arrived after its study was analysed, and the analysed series is preferred."""


@dataclass(frozen=True)
class _ChosenSeries:
    choice: Choice
    previous: JobRecord | None
    pet: tuple[SeriesGroup, ...] = ()  # PET series carried beside the CT


def submit_study(
    study_dir: Path,
    origin: Origin,
    destinations: Sequence[str] | None = None,
    options: JobOptions | None = None,
    *,
    settings: Settings,
    store: JobStore | None = None,
    send: SendTask | None = None,
) -> list[str]:
    """Create and queue one job per chosen series of the studies in ``study_dir``.

    ``destinations`` default to the sending node when it is a known DICOM node. Raises an
    InputRefused subclass (no DICOM image, no suitable series...) when nothing is queued.
    """
    store = store or job_store(settings.redis.url)
    send = send or (lambda job_id: send_analyze(settings.redis.url, job_id))
    if destinations is None:
        destinations = default_destinations(origin, settings.dicom_nodes)
    chosen = _choose(study_dir, store, from_pacs=origin.kind == OriginKind.DICOM)
    job_ids: list[str] = []
    for item in chosen:
        record = _create_job(item, origin, list(destinations), options, settings, store)
        try:
            send(record.id)
        except Exception as exc:
            store.transition(
                record.id,
                JobState.FAILED,
                note="not queued",
                error=f"the job could not be queued ({type(exc).__name__}: {exc})",
            )
            raise
        job_ids.append(record.id)
        log.info(
            "job %s queued: series %s version %d, %d instances, destinations %s",
            record.id,
            record.series_instance_uid,
            record.version,
            record.instances,
            ",".join(record.destinations) or "none",
            extra={"job_id": record.id, "series_uid": record.series_instance_uid},
        )
    return job_ids


def _choose(study_dir: Path, store: JobStore, from_pacs: bool) -> list[_ChosenSeries]:
    """The chosen series of each study, completed with earlier instances of the series.

    ``from_pacs``: instances of series with earlier jobs join them (new versions), and the
    series already analysed for a study take part in the choice.
    """
    scan = scan_headers(collect_sources(study_dir))
    if not scan.instances:
        corrupt = "; ".join(f"{c.name}: {c.reason}" for c in scan.corrupt[:5])
        raise InputRefused(
            f"expected DICOM images in the study; found none ({len(scan.skipped)} file(s) "
            f"skipped as not DICOM images, {len(scan.corrupt)} unreadable"
            + (f": {corrupt}" if corrupt else "")
            + ")"
        )
    grouping = group_series(scan.instances)
    received = {g.series_instance_uid for g in grouping.series}
    previous = {
        uid: p
        for uid in (received if from_pacs else ())
        if (p := store.latest_for_series(uid)) is not None
    }
    studies = {g.study_instance_uid for g in grouping.series}
    analysed = _analysed_series(store, studies, received) if from_pacs else {}
    earlier_jobs = [*previous.values(), *analysed.values()]
    if earlier_jobs:
        # new copies first: grouping keeps the first copy of a repeated SOP instance
        folders = [Path(p.input_dir) for p in earlier_jobs if Path(p.input_dir).is_dir()]
        earlier = [i for f in folders for i in scan_headers(collect_sources(f)).instances]
        grouping = group_series(scan.instances + earlier)
    by_study: dict[str, list[SeriesGroup]] = {}
    for group in grouping.series:
        by_study.setdefault(group.study_instance_uid, []).append(group)
    chosen: list[_ChosenSeries] = []
    refusals: list[HabitusError] = []
    rules = SeriesRules()
    for study_uid, groups in by_study.items():
        try:
            choice = choose_series(groups, rules)
        except HabitusError as exc:
            log.warning("study %s: no series queued: %s", study_uid, exc)
            refusals.append(exc)
            continue
        winner = choice.group.series_instance_uid
        pet = _pet_series(groups)
        if winner in analysed and _brings_new_pet(pet, analysed[winner], received):
            log.info(
                "study %s: PET received after job %s: its series analysed again with the PET",
                study_uid,
                analysed[winner].id,
            )
            chosen.append(_ChosenSeries(choice, analysed[winner], pet))
            continue
        if winner in analysed:
            skipped = LateSeriesSkipped(_skip_reason(choice, analysed[winner], received))
            log.info("study %s: %s", study_uid, skipped)
            refusals.append(skipped)
            continue
        chosen.append(_ChosenSeries(choice, previous.get(winner), pet))
    if not chosen:
        if len(refusals) == 1:
            raise refusals[0]
        raise InputRefused(
            f"no series can be analysed in any of the {len(refusals)} studies received:\n"
            + "\n".join(str(r) for r in refusals)
        )
    return chosen


def _pet_series(groups: list[SeriesGroup]) -> tuple[SeriesGroup, ...]:
    """The study's PET series that may be the PET of its CT, judged from their headers."""
    return tuple(g for g in groups if not header_failures(g))


def _brings_new_pet(pet: tuple[SeriesGroup, ...], job: JobRecord, received: set[str]) -> bool:
    """Whether PET instances received now are missing from ``job``'s input."""
    folder = Path(job.input_dir)
    return any(
        not (folder / _file_name(instance)).exists()
        for group in pet
        if group.series_instance_uid in received
        for instance in group.instances
    )


def _analysed_series(
    store: JobStore, studies: set[str], received: set[str]
) -> dict[str, JobRecord]:
    """Latest jobs of the other series of these studies, unless they failed or were cancelled."""
    found: dict[str, JobRecord] = {}
    for study_uid in studies:
        for series_uid in store.series_of_study(study_uid) - received:
            job = store.latest_for_series(series_uid)
            if job is not None and job.state not in _NOT_ANALYSED:
                found[series_uid] = job
    return found


def _skip_reason(choice: Choice, job: JobRecord, received: set[str]) -> str:
    late = "; ".join(
        f"{_label(v)}: {'; '.join(v.reasons)}"
        for v in choice.others
        if v.series_instance_uid in received
    )
    return (
        f"not analysed: the study was already analysed from {_label(choice.chosen)} (job "
        f"{job.id}, {job.state.value}), which ranks above the series received now; {late}"
    )


def _label(verdict: SeriesVerdict) -> str:
    number = "without number" if verdict.series_number is None else str(verdict.series_number)
    return f"series {number} '{verdict.description}' ({verdict.series_instance_uid})"


def _create_job(
    item: _ChosenSeries,
    origin: Origin,
    destinations: list[str],
    options: JobOptions | None,
    settings: Settings,
    store: JobStore,
) -> JobRecord:
    group = item.choice.group
    if item.previous is not None:  # a new version still goes where the previous one was going
        destinations = list(dict.fromkeys([*item.previous.destinations, *destinations]))
    record = JobRecord(
        input_dir="",
        output_dir="",
        origin=origin,
        study_instance_uid=group.study_instance_uid,
        series_instance_uid=group.series_instance_uid,
        destinations=destinations,
        deliveries={node: DeliveryRecord() for node in destinations},
        options=(options or JobOptions()).model_dump(exclude_defaults=True),
        warnings=list(item.choice.warnings),
    )
    folder = job_folder(settings.jobs_dir, record.id)
    input_dir, output_dir = folder / "input", folder / "output"
    _place_instances(group.instances, input_dir)
    for pet in item.pet:
        _place_instances(pet.instances, input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    record = record.model_copy(
        update={
            "input_dir": str(input_dir),
            "output_dir": str(output_dir),
            "instances": len(group.instances),
            "pet_series_instance_uids": [pet.series_instance_uid for pet in item.pet],
        }
    )
    if item.previous is not None:
        record = record.model_copy(
            update={"version": item.previous.version + 1, "supersedes": item.previous.id}
        )
    try:
        created = store.create(record, latest_of_series=origin.kind == OriginKind.DICOM)
    except Exception:
        # No record names the folder (Redis down, a conflict): nothing would ever remove it.
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if item.previous is not None:
        _supersede(store, item.previous, created)
    return created


def _supersede(store: JobStore, previous: JobRecord, successor: JobRecord) -> None:
    """Stop an unfinished previous version: its results would be replaced anyway."""
    note = f"superseded by version {successor.version} (job {successor.id})"

    def stop(record: JobRecord) -> JobRecord:
        if record.state == JobState.QUEUED:
            return record.with_state(JobState.CANCELLED, note, cancel_requested=True, error=note)
        if record.state == JobState.RUNNING:  # the worker ends it, with this reason
            return record.model_copy(update={"cancel_requested": True, "cancel_reason": note})
        return record

    try:
        store.update(previous.id, stop)
    except HabitusError as exc:  # deleted meanwhile: nothing to stop
        log.info("previous job %s not stopped: %s", previous.id, exc)


def _place_instances(instances: list[Instance], input_dir: Path) -> None:
    input_dir.mkdir(parents=True, exist_ok=True)
    for instance in instances:
        _link_or_copy(instance.source, input_dir / _file_name(instance))


def _file_name(instance: Instance) -> str:
    """An instance's name in a job's input: its SOP Instance UID."""
    uid = str(instance.header.get("SOPInstanceUID", "") or "") or instance.name
    return f"{_UNSAFE.sub('_', uid)}.dcm"


def _link_or_copy(source: FileSource, target: Path) -> None:
    if target.exists():
        target.unlink()
    if source.member is not None:  # an entry of a zip inside the study folder
        with source.open() as stream, target.open("wb") as out:
            shutil.copyfileobj(stream, out)
        return
    try:
        os.link(source.path, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source.path, target)
