"""`habitus serve`: the REST API, the DICOM listener and one worker on one machine.

The API runs in this process (uvicorn), the listener in threads of this process, the worker
as a child process (``python -P -m worker``) that is started again whenever it stops
(``service.supervisor``); when it cannot start at all, `habitus serve` exits with the reason.
Ctrl-C or SIGTERM stops all three: the API and the listener finish what they are answering,
the worker is asked for a warm shutdown and, after a grace period, stopped; a job it was
running goes back to the queue (late acknowledgement) and runs again later.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import redis
import uvicorn
from pydantic import SecretStr

from habitus.errors import HabitusError
from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE
from habitus.liveness import leave, worker_member
from habitus.settings import Settings, load_settings
from service.api import create_app
from service.listener.wiring import deployment_listener
from service.supervisor import WorkerSupervisor

log = logging.getLogger("service.serve")

WORKER_GRACE_S = 10.0
LOCAL_KEY_NAME = "local"


class ServeError(HabitusError):
    """The services cannot start as configured."""


def serve(settings: Settings, *, listener: bool = True, worker: bool = True) -> None:
    """Run the API (and the listener and a worker) until Ctrl-C or SIGTERM."""
    _check_redis(settings.redis.url)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    settings = with_local_api_key(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.api.api_host,
            port=settings.api.api_port,
            log_config=None,
            timeout_graceful_shutdown=10,
        )
    )

    def give_up(reason: str) -> None:
        server.should_exit = True  # uvicorn's own way out: the API stops as on Ctrl-C

    with (
        _worker_process(settings, worker, give_up) as supervisor,
        _dicom_listener(settings, enabled=listener),
    ):
        log.info("REST API on http://%s:%d", settings.api.api_host, settings.api.api_port)
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if supervisor is not None and supervisor.failure is not None:
            raise ServeError(supervisor.failure)


def with_local_api_key(settings: Settings) -> Settings:
    """Settings with an API key: the configured ones, or one kept in the spool (mode 0600)."""
    if settings.api.api_keys or settings.api.allow_anonymous:
        return settings
    key_file = settings.spool_dir / "api-key"
    if key_file.is_file():
        key = key_file.read_text(encoding="utf-8").strip()
    else:
        key = secrets.token_urlsafe(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
    log.warning("no API key configured (HABITUS_API_KEYS); clients use the key in %s", key_file)
    return settings.replaced(api={"api_keys": {LOCAL_KEY_NAME: SecretStr(key)}})


def _check_redis(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise ServeError(
            f"expected Redis at {url} (HABITUS_REDIS_URL); it does not answer ({exc})"
        ) from exc


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextmanager
def _worker_process(
    settings: Settings, enabled: bool, on_give_up: Callable[[str], None]
) -> Iterator[WorkerSupervisor | None]:
    if not enabled:
        yield None
        return
    env = {**os.environ, "HABITUS_REDIS_URL": settings.redis.url}
    client = redis.Redis.from_url(settings.redis.url, socket_timeout=5)

    def withdraw(pid: int) -> None:
        """Not ready from the moment the worker dies, not once its heartbeat lapses."""
        try:
            leave(client, (ANALYZE_QUEUE, DELIVER_QUEUE), worker_member(pid))
        except redis.RedisError as exc:  # its heartbeat lapses on its own
            log.info("heartbeat of worker %d not withdrawn: %s", pid, exc)

    supervisor = WorkerSupervisor(env, on_give_up, WORKER_GRACE_S, on_death=withdraw).start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
        client.close()


@contextmanager
def _dicom_listener(settings: Settings, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    listener = deployment_listener(settings).start()
    try:
        yield
    finally:
        listener.stop()


def main() -> int:
    """Entry point of `habitus serve`: settings from the environment, logs to stderr."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,  # `habitus serve` arrives with the CLI's WARNING-level logging set up
    )
    try:
        serve(settings)
    except KeyboardInterrupt:
        pass
    except HabitusError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
