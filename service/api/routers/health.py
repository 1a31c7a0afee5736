"""Liveness, readiness and metrics: for orchestrators and Prometheus, no API key needed."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import redis
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from habitus.jobs import ANALYZE_QUEUE
from habitus.liveness import live_workers
from habitus.settings import Settings
from service.api.deps import SettingsDep, StoreDep, require_client
from service.api.problems import PROBLEM_MEDIA_TYPE, Problem
from service.api.schemas import Health
from service.metrics import PROMETHEUS_MEDIA_TYPE, render_metrics

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Redis answers, the spool is writable with enough free space and a worker is alive",
    responses={503: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}},
)
def readyz(settings: SettingsDep, store: StoreDep) -> JSONResponse:
    checks = {
        "redis": _check_redis(store.redis),
        "spool": _check_spool(settings),
        "worker": _check_worker(store.redis),
    }
    if all(v == "ok" for v in checks.values()):
        return JSONResponse(Health(status="ready", checks=checks).model_dump())
    failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    problem = Problem.model_validate(
        {
            "type": "https://habitus.invalid/problems/not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"not ready: {failing}",
            "instance": "/readyz",
            "checks": checks,
        }
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=503, media_type=PROBLEM_MEDIA_TYPE
    )


# Anyone may call /readyz: its answers name the failing check, never a host, path or the
# text of an exception (which can carry a Redis URL); those go to the log.


def _check_redis(client: object) -> str:
    try:
        client.ping()  # type: ignore[attr-defined]
    except Exception as exc:  # any failure to answer means not ready
        log.warning("readyz: no answer from Redis: %s: %s", type(exc).__name__, exc)
        return "no answer from Redis"
    return "ok"


def _check_worker(client: redis.Redis) -> str:
    """One Redis call: jobs would wait for ever while no worker beats (worker.heartbeat)."""
    try:
        live = live_workers(client, ANALYZE_QUEUE)
    except Exception as exc:  # any failure to answer means not ready
        log.warning("readyz: worker heartbeats not read: %s: %s", type(exc).__name__, exc)
        return "no answer from Redis"
    return "ok" if live else "no live worker takes analysis jobs"


def _check_spool(settings: Settings) -> str:
    spool = settings.spool_dir
    try:
        spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".readyz-", dir=spool)
        os.close(fd)
        Path(name).unlink()
    except OSError as exc:
        log.warning("readyz: spool %s is not writable: %s", spool, exc)
        return "spool not writable"
    free = shutil.disk_usage(spool).free
    if free < settings.api.min_free_bytes:
        log.warning("readyz: spool %s has %d bytes free, below the minimum", spool, free)
        return "spool free space below HABITUS_MIN_FREE_BYTES"
    return "ok"


def metrics(settings: SettingsDep, store: StoreDep) -> Response:
    return Response(render_metrics(store, settings.redis.url), media_type=PROMETHEUS_MEDIA_TYPE)


def metrics_router(require_key: bool) -> APIRouter:
    """/metrics, behind an API key only when the settings ask for it."""
    metrics_routes = APIRouter(tags=["health"])
    metrics_routes.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        summary="Prometheus metrics: jobs by state, queue depth, stage durations, instances",
        response_class=Response,
        responses={200: {"content": {PROMETHEUS_MEDIA_TYPE: {}}}},
        dependencies=[Depends(require_client)] if require_key else [],
    )
    return metrics_routes
