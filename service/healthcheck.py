"""The container health check of the image that runs either the REST API or the listener.

    python -m service.healthcheck

Healthy (exit 0) when the REST API on this host answers ``/healthz``, or, in a container that
runs the DICOM listener instead, when the listener's port accepts a connection; otherwise
exit 1 with the reason. One check serves both commands of the image, so a listener started
with a plain ``docker run`` is not reported unhealthy for lacking an API.
"""

from __future__ import annotations

import os
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


def listener_healthy(port: int) -> str | None:
    """None if the DICOM listener's port accepts a connection; else why not."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        return f"DICOM listener on port {port} does not accept connections ({exc})"
    return None


def main() -> int:
    # the ports as the service's settings read them, without loading (and validating) the rest
    api_port = int(os.environ.get("HABITUS_API_PORT", "8000"))
    listener_port = int(os.environ.get("HABITUS_LISTENER_PORT", "11112"))
    api_problem = api_healthy(api_port)
    if api_problem is None:
        return 0
    listener_problem = listener_healthy(listener_port)
    if listener_problem is None:
        return 0
    sys.stderr.write(f"unhealthy: {api_problem}; {listener_problem}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
