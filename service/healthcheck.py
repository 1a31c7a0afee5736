"""The container health and readiness checks of the image that runs the REST API or the listener.

    python -m service.healthcheck            # alive (the image's HEALTHCHECK, liveness probes)
    python -m service.healthcheck --ready    # ready for work (readiness probes)

Healthy (exit 0) when the REST API on this host answers ``/healthz``, or, in a container that
runs the DICOM listener instead, when the listener's port accepts a connection; otherwise
exit 1 with the reason. One check serves both commands of the image, so a listener started
with a plain ``docker run`` is not reported unhealthy for lacking an API.

Ready (exit 0) when the REST API answers ``/readyz`` with 200 (Redis, spool and a live
worker), or when the listener's port accepts a connection and Redis holds a live worker's
heartbeat (``habitus.liveness``): studies received while no worker runs would wait unseen.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def api_healthy(port: int) -> str | None:
    """None if the API answers ``/healthz`` with 200; else why not."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S) as r:
            return None if r.status == 200 else f"REST API /healthz answered {r.status}"
    except urllib.error.HTTPError as exc:
        return f"REST API /healthz answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"REST API on port {port} does not answer ({reason})"


def api_ready(port: int) -> str | None:
    """None if the API answers ``/readyz`` with 200; else why not (its problem's detail)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_S) as r:
            return None if r.status == 200 else f"REST API /readyz answered {r.status}"
    except urllib.error.HTTPError as exc:
        try:  # bounded: the API's own short problem document
            detail = json.loads(exc.read(4096))["detail"]
        except (ValueError, KeyError, TypeError, OSError):
            detail = f"answered {exc.code}"
        return f"REST API /readyz: {detail}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"REST API on port {port} does not answer ({reason})"


def worker_alive(redis_url: str) -> str | None:
    """None if a worker that takes analysis jobs has a live heartbeat in Redis; else why not."""
    import redis  # only the readiness check needs it

    from habitus.jobs import ANALYZE_QUEUE
    from habitus.liveness import live_workers

    client = redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT_S)
    try:
        live = live_workers(client, ANALYZE_QUEUE)
    except redis.RedisError as exc:  # its text may carry the URL: the type says enough
        return f"Redis does not answer ({type(exc).__name__})"
    finally:
        client.close()
    return None if live else "no live worker takes analysis jobs"


def listener_healthy(port: int) -> str | None:
    """None if the DICOM listener's port accepts a connection; else why not."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        return f"DICOM listener on port {port} does not accept connections ({exc})"
    return None


def main(argv: list[str] | None = None) -> int:
    ready = "--ready" in (sys.argv[1:] if argv is None else argv)
    # The settings the checked service read. The model imports pydantic and no client library
    # (redis, pynetdicom...): this runs every 30 s in each container.
    from habitus.settings import load_settings

    settings = load_settings()
    api_port, listener_port = settings.api.api_port, settings.listener.port
    api_problem = api_ready(api_port) if ready else api_healthy(api_port)
    if api_problem is None:
        return 0
    listener_problem = listener_healthy(listener_port)
    if listener_problem is None and ready:
        listener_problem = worker_alive(settings.redis.url)
    if listener_problem is None:
        return 0
    state = "not ready" if ready else "unhealthy"
    sys.stderr.write(f"{state}: {api_problem}; {listener_problem}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
