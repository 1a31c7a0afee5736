"""The deliver task: C-STORE a succeeded job's SEG and SR to one PACS node, with retries.

The payload is ``(job id, node name)``; everything else is in the job record and the
settings. Each instance the node confirms is written to the job's delivery record at once,
so a later attempt (after a failure, a worker restart or a duplicate message) sends only
what the node has not confirmed: nothing is sent twice. A failed attempt is retried with
exponential backoff, each wait capped below the broker's visibility timeout, until the
give-up window has passed; the record shows the attempts, the last error and the next try.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path

import pydicom
import redis
from celery import Task
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from habitus.jobs import (
    DELIVER_TASK,
    DeliveryChange,
    DeliveryRecord,
    DeliveryState,
    JobNotFoundError,
    JobRecord,
    JobState,
    JobStore,
    utc_now,
)
from habitus.nodes import DicomNode
from habitus.settings import DeliverySettings, Settings
from worker.app import app
from worker.fenced import check_current, update_delivery_if_current
from worker.lease import LeaseLostError, delivery_lease
from worker.merge import merged
from worker.outage import redis_client
from worker.tls import TlsContext, client_context, describe, missing_files

log = logging.getLogger("worker.delivery")

DELIVERED_KINDS = ("seg", "sr")  # result files that go to PACS, in sending order
SUCCESS_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}  # success, and stored-with-warning
TRANSIENT_STATUS_PREFIXES = (0xA7,)  # out of resources: the node may recover


def check_node_tls_files(nodes: Sequence[DicomNode]) -> None:
    """Raise ValueError naming the TLS files of ``nodes`` that cannot be read.

    Checked where results are sent from, not in DicomNode: the API and the listener read
    the same nodes without needing the worker's key.
    """
    missing = [f"{n.name}: {', '.join(m)}" for n in nodes if n.tls and (m := missing_files(n))]
    if missing:
        raise ValueError(f"TLS files of DICOM nodes not readable: {'; '.join(missing)}")


# checked when the worker imports its tasks: nodes it cannot send to as configured (a TLS file
# missing) stop it at start-up with the reason, rather than failing each delivery it takes
check_node_tls_files(app.settings.dicom_nodes)


class DeliveryError(Exception):
    """An attempt failed; ``permanent`` when trying again cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class ResultInstance:
    kind: str
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    sent: list[str]  # SOP Instance UIDs confirmed by the node in this attempt
    retry_in_s: float | None = None  # set when the task should run again


SendInstances = Callable[
    [DicomNode, list[ResultInstance], Callable[[str], None], Callable[[], None]], None
]
"""Store the instances on the node, calling back with each confirmed SOP Instance UID; the
last argument is called before each instance and raises when sending must stop."""

UpdateDelivery = Callable[[DeliveryChange], JobRecord]


class Deliverer:
    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        send: SendInstances | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.send = send or CStoreSender(settings.delivery).send
        self.clock = clock

    def deliver(self, job_id: str, node_name: str) -> Outcome:
        """One attempt; never raises for delivery failures (the record tells them)."""
        context = {"job_id": job_id, "node": node_name}
        try:
            record = self.store.get(job_id)
        except JobNotFoundError:
            log.info("job %s no longer exists; delivery dropped", job_id, extra=context)
            return Outcome(DeliveryState.FAILED, [])
        current = record.deliveries.get(node_name, DeliveryRecord())
        if current.state == DeliveryState.DONE:
            return Outcome(DeliveryState.DONE, [])
        if record.state != JobState.SUCCEEDED:
            return self._fail(job_id, node_name, f"job is {record.state.value}, not succeeded")
        node = self.settings.node(node_name)
        if node is None:
            known = ", ".join(n.name for n in self.settings.dicom_nodes) or "none"
            return self._fail(
                job_id, node_name, f"no DICOM node named {node_name!r} (known: {known})"
            )
        lease = delivery_lease(
            self.store.redis, self.store.keys, job_id, node_name, self._lock_ttl_s()
        )
        if not lease.acquire():
            # another attempt is sending now, or died holding the lease: look again once the
            # lease has lapsed (the delivered list keeps a second attempt from resending)
            wait = max(lease.remaining_s(), 1.0)
            log.info(
                "delivery of job %s to %s is under way elsewhere; looking again in %.0f s",
                job_id,
                node_name,
                wait,
                extra=context,
            )
            return Outcome(current.state, [], retry_in_s=wait)
        # every write and every C-STORE of this attempt is fenced: once another attempt has
        # taken the lease over (this one stalled past its lapse), this one stops
        update = partial(update_delivery_if_current, self.store, job_id, node_name, lease)
        sent: list[str] = []
        try:
            return self._attempt(
                record,
                node,
                update,
                lambda: check_current(lease, f"delivery of job {job_id} to {node_name}"),
                sent,
                context,
            )
        except LeaseLostError:
            log.warning(
                "delivery of job %s to %s stopped after %d instance(s): another attempt took "
                "it over and sends the rest",
                job_id,
                node_name,
                len(sent),
                extra=context,
            )
            return Outcome(DeliveryState.SENDING, sent)
        finally:
            with contextlib.suppress(redis.RedisError):  # it lapses by itself
                lease.release()

    def _attempt(
        self,
        record: JobRecord,
        node: DicomNode,
        update: UpdateDelivery,
        check: Callable[[], None],
        sent: list[str],
        context: dict[str, str],
    ) -> Outcome:
        job_id, node_name = record.id, node.name
        started = update(
            lambda d: d.model_copy(
                update={"state": DeliveryState.SENDING, "attempts": d.attempts + 1}
            ),
        ).deliveries[node_name]
        try:
            instances = result_instances(record)
            done = set(started.delivered_sop_instance_uids)
            todo = [i for i in instances if i.sop_instance_uid not in done]

            def confirmed(uid: str) -> None:
                sent.append(uid)
                update(
                    lambda d: d.model_copy(
                        update={
                            "delivered_sop_instance_uids": merged(
                                d.delivered_sop_instance_uids, [uid]
                            )
                        }
                    ),
                )

            if todo:
                self.send(node, todo, confirmed, check)
        except DeliveryError as exc:
            return self._failed_attempt(record, node_name, started, sent, exc, update)
        update(
            lambda d: d.model_copy(
                update={"state": DeliveryState.DONE, "last_error": None, "next_attempt_at": None}
            ),
        )
        log.info(
            "job %s delivered to %s (%s:%d): %d instance(s) sent, attempt %d",
            job_id,
            node_name,
            node.host,
            node.port,
            len(sent),
            started.attempts,
            extra=context,
        )
        return Outcome(DeliveryState.DONE, sent)

    def _failed_attempt(
        self,
        record: JobRecord,
        node_name: str,
        started: DeliveryRecord,
        sent: list[str],
        exc: DeliveryError,
        update: UpdateDelivery,
    ) -> Outcome:
        now = self.clock()
        window_start = started.dispatched_at or record.finished_at or record.created_at
        delay = min(
            self.settings.delivery.first_retry_s * 2 ** max(started.attempts - 1, 0),
            self.settings.delivery.max_retry_s,
        )
        next_at = now + timedelta(seconds=delay)
        give_up_at = window_start + timedelta(seconds=self.settings.delivery.give_up_after_s)
        if exc.permanent or next_at > give_up_at:
            reason = (
                str(exc) if exc.permanent else f"gave up after {started.attempts} attempts: {exc}"
            )
            return self._fail(record.id, node_name, reason, sent, update)
        update(
            lambda d: d.model_copy(
                update={
                    "state": DeliveryState.PENDING,
                    "last_error": str(exc),
                    "next_attempt_at": next_at,
                }
            ),
        )
        log.warning(
            "job %s: delivery to %s failed (attempt %d: %s); next try in %.0f s",
            record.id,
            node_name,
            started.attempts,
            exc,
            delay,
            extra={"job_id": record.id, "node": node_name},
        )
        return Outcome(DeliveryState.PENDING, sent, retry_in_s=delay)

    def _fail(
        self,
        job_id: str,
        node_name: str,
        reason: str,
        sent: list[str] | None = None,
        update: UpdateDelivery | None = None,
    ) -> Outcome:
        update = update or partial(self.store.update_delivery, job_id, node_name)
        with contextlib.suppress(JobNotFoundError):  # deleted meanwhile: nothing to record
            update(
                lambda d: d.model_copy(
                    update={
                        "state": DeliveryState.FAILED,
                        "last_error": reason,
                        "next_attempt_at": None,
                    }
                ),
            )
        log.error(
            "job %s: delivery to %s failed for good: %s",
            job_id,
            node_name,
            reason,
            extra={"job_id": job_id, "node": node_name},
        )
        return Outcome(DeliveryState.FAILED, sent or [])

    def _lock_ttl_s(self) -> int:
        # long enough for one attempt: association plus a DIMSE exchange per result file
        return int(self.settings.delivery.timeout_s * (2 + len(DELIVERED_KINDS))) + 30


def result_instances(record: JobRecord) -> list[ResultInstance]:
    """The job's SEG and SR files, with the UIDs needed to send them."""
    found = []
    for kind in DELIVERED_KINDS:
        name = record.result_files.get(kind)
        if not name:
            continue
        path = Path(name)
        if not path.is_absolute():
            path = Path(record.output_dir) / path
        try:
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"]
            )
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise DeliveryError(
                f"result file {kind} at {path} cannot be read: {exc}", permanent=True
            ) from exc
        found.append(
            ResultInstance(
                kind=kind,
                path=path,
                sop_class_uid=str(ds.file_meta.MediaStorageSOPClassUID),
                sop_instance_uid=str(ds.file_meta.MediaStorageSOPInstanceUID),
                transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
            )
        )
    if not found:
        raise DeliveryError(
            f"job {record.id} has no SEG or SR to send (result files: "
            f"{', '.join(sorted(record.result_files)) or 'none'})",
            permanent=True,
        )
    return found


class CStoreSender:
    """Sends instances to a node over one association with pynetdicom."""

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings  # the calling AE title and the timeouts

    def send(
        self,
        node: DicomNode,
        instances: list[ResultInstance],
        confirmed: Callable[[str], None],
        check: Callable[[], None],
    ) -> None:
        ae = AE(ae_title=self.settings.ae_title)
        ae.connection_timeout = self.settings.timeout_s
        ae.acse_timeout = self.settings.timeout_s
        ae.dimse_timeout = self.settings.timeout_s
        ae.network_timeout = self.settings.timeout_s
        for sop_class in sorted({i.sop_class_uid for i in instances}):
            syntaxes = [i.transfer_syntax_uid for i in instances if i.sop_class_uid == sop_class]
            ae.add_requested_context(
                sop_class,
                list(dict.fromkeys([*syntaxes, ExplicitVRLittleEndian, ImplicitVRLittleEndian])),
            )
        where = f"{node.ae_title}@{node.host}:{node.port}"
        tls = self._tls_context(node, where)
        assoc = ae.associate(
            node.host,
            node.port,
            ae_title=node.ae_title,
            tls_args=(tls, node.tls_hostname) if tls is not None else None,
        )
        if not assoc.is_established:
            if tls is not None and tls.error is not None:
                raise tls_failure(node, where, tls.error)
            state = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "failed"
            over = " over TLS" if tls is not None else ""
            raise DeliveryError(
                f"association with {where}{over} {state} (is the node up, and does it accept "
                f"the calling AE title {self.settings.ae_title}?)"
            )
        try:
            for instance in instances:
                check()  # raises when this attempt may no longer send
                try:
                    status = assoc.send_c_store(pydicom.dcmread(instance.path))
                except (ValueError, RuntimeError) as exc:
                    raise DeliveryError(
                        f"{instance.kind} not sent to {where}: {exc}",
                        permanent=isinstance(exc, ValueError),
                    ) from exc
                code = getattr(status, "Status", None)
                if code is None:
                    raise DeliveryError(
                        f"{instance.kind}: no response from {where} (connection lost or timed out)"
                    )
                if code in SUCCESS_STATUSES:
                    confirmed(instance.sop_instance_uid)
                    continue
                transient = any(code >> 8 == p for p in TRANSIENT_STATUS_PREFIXES)
                raise DeliveryError(
                    f"{where} refused the {instance.kind} with status 0x{code:04X}",
                    permanent=not transient,
                )
        finally:
            if assoc.is_established:
                assoc.release()

    @staticmethod
    def _tls_context(node: DicomNode, where: str) -> TlsContext | None:
        if not node.tls:
            return None
        try:
            return client_context(node)
        except (OSError, ssl.SSLError) as exc:  # a file removed or replaced since start-up
            raise DeliveryError(
                f"TLS with {where} not attempted: its CA or client certificate cannot be "
                f"loaded ({exc})",
                permanent=True,
            ) from exc


def tls_failure(node: DicomNode, where: str, error: ssl.SSLError) -> DeliveryError:
    """Why TLS with ``node`` failed. Never followed by a try in the clear; a certificate
    that fails verification keeps failing until the node's settings or certificate change."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"TLS with {where} failed ({describe(error)}; expected a certificate for "
            f"{node.tls_hostname!r} signed by {node.tls_ca_file or 'a CA the system trusts'})",
            permanent=True,
        )
    return DeliveryError(
        f"TLS with {where} failed ({describe(error)}; does the node speak DICOM TLS on this "
        "port, and does it accept the client certificate configured, if any?)"
    )


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    """One per worker process: one Redis connection pool."""
    settings = app.settings
    store = JobStore(redis_client(settings.redis.url))
    return Deliverer(store, settings)


@app.task(name=DELIVER_TASK, bind=True, max_retries=None, acks_late=True)
def deliver_results(self: Task, job_id: str, node: str) -> str:
    """Send one job's results to one node; retried by countdown until done or given up."""
    outcome = deliverer().deliver(job_id, node)
    if outcome.retry_in_s is not None:
        raise self.retry(countdown=outcome.retry_in_s)
    return outcome.state.value
