"""The audit log: one JSON line per upload, result download, cancel and delete.

Each line says when, which API key (its name, never the key), from which address, what was
done to which job, and how it ended, e.g.::

    {"time": "2026-12-07T17:02:11.532Z", "action": "download", "outcome": "ok",
     "status": 200, "key": "ris", "client": "10.0.0.7", "job_id": "9f...", "path": ...}

An upload's line lists its jobs in ``job_ids``; the retention sweeper's deletions have
``key`` ``null`` and ``client`` ``"retention"``. Lines go to the logger ``habitus.audit``,
which writes them bare to stderr and, with ``HABITUS_AUDIT_LOG_FILE``, to that file, whatever
the rest of the logging is set to: an audit trail must not depend on a log level.

The HTTP lines come from one ASGI middleware that knows the audited routes, so a refused
request (no key, no scope, someone else's job) is recorded as surely as a served one.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUDIT_LOGGER = "habitus.audit"
RETENTION_CLIENT = "retention"
MAX_CAPTURED_BODY = 1024 * 1024  # an upload's answer (its job ids) is read up to this size
JOB_IDS_HEADER = b"habitus-job-ids"  # lists an upload's jobs where the body is DICOM JSON
CALLER_STATE = "api_key_name"
"""``request.state`` attribute where authentication leaves the key's name for these lines."""

log = logging.getLogger(AUDIT_LOGGER)

# (method, route path prefix, action); first match wins
AUDITED_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/studies", "upload"),
    ("POST", "/v1/jobs/{job_id}/cancel", "cancel"),
    ("DELETE", "/v1/jobs/{job_id}", "delete"),
    ("GET", "/v1/jobs/{job_id}/", "download"),  # every result file: seg, sr, report, preview
)


def audit(
    action: str,
    outcome: str,
    *,
    key: str | None,
    client: str | None,
    job_id: str | None = None,
    **fields: Any,
) -> None:
    """Write one audit line."""
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "outcome": outcome,
        "key": key,
        "client": client,
        "job_id": job_id,
        **fields,
    }
    log.info(json.dumps(line, separators=(",", ":")))


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not-found"
    return "refused" if status < 500 else "error"


def audited_action(scope: Scope) -> str | None:
    """The audited action of a routed request, or None."""
    route_path = getattr(scope.get("route"), "path", None)
    if route_path is None:
        return None
    for method, prefix, action in AUDITED_ROUTES:
        if scope.get("method") == method and route_path.startswith(prefix):
            return action
    return None


class AuditMiddleware:
    """Writes an audit line for every audited route once its answer has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless an answer starts: the exception reaches the server's handler
        job_ids_header: str | None = None
        body = bytearray()

        async def send_and_note(message: Message) -> None:
            nonlocal status, job_ids_header
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == JOB_IDS_HEADER:
                        job_ids_header = value.decode("latin-1")
            elif message["type"] == "http.response.body" and audited_action(scope) == "upload":
                body.extend(message.get("body", b"")[: MAX_CAPTURED_BODY - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            action = audited_action(scope)
            if action is not None:
                _audit_request(scope, action, status, _job_ids(job_ids_header, bytes(body)))


def _audit_request(scope: Scope, action: str, status: int, job_ids: list[str]) -> None:
    client = scope.get("client")
    fields: dict[str, Any] = {"status": status, "path": scope.get("path")}
    if action == "upload":
        fields["job_ids"] = job_ids
    audit(
        action,
        outcome_of(status),
        key=(scope.get("state") or {}).get(CALLER_STATE),
        client=client[0] if client else None,
        job_id=(scope.get("path_params") or {}).get("job_id"),
        **fields,
    )


def _job_ids(header: str | None, body: bytes) -> list[str]:
    """An upload's jobs: from the header a STOW-RS answer carries, or the JSON answer."""
    if header is not None:
        return [i.strip() for i in header.split(",") if i.strip()]
    if not body:
        return []
    try:
        ids = json.loads(body).get("job_ids", [])
    except (ValueError, AttributeError):
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def configure_audit_log(file: Path | None) -> None:
    """Send ``habitus.audit`` to stderr and to ``file``, as bare JSON lines (idempotent)."""
    log.setLevel(logging.INFO)
    log.propagate = False  # the lines are whole JSON documents, not prefixed log records
    for handler in list(log.handlers):  # one audit file per process: the latest configured
        if isinstance(handler, logging.FileHandler) and (
            file is None or Path(handler.baseFilename) != file.resolve()
        ):
            log.removeHandler(handler)
            handler.close()
    wanted: list[logging.Handler] = []
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        wanted.append(_StderrHandler())
    if file is not None and not any(isinstance(h, logging.FileHandler) for h in log.handlers):
        file.parent.mkdir(parents=True, exist_ok=True)
        wanted.append(logging.handlers.WatchedFileHandler(file, encoding="utf-8"))  # logrotate
    for handler in wanted:
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written (as logging.lastResort)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass
