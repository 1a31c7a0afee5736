"""`habitus serve`: registered into the habitus command line through an entry point."""

from __future__ import annotations

import argparse
from typing import Any

from habitus.errors import HabitusError


def register(commands: Any) -> None:
    """Add the `serve` command to habitus's sub-command parsers."""
    serve = commands.add_parser(
        "serve",
        help="run the REST API, the DICOM listener and a worker on this machine",
        description="Run the REST API, the DICOM listener and a Celery worker on this "
        "machine, on the Redis named by HABITUS_REDIS_URL. It takes no options: every setting "
        "is an environment variable with the prefix HABITUS_, validated at start-up.",
        epilog="Most used: HABITUS_DICOM_NODES (who may send, where results go), "
        "HABITUS_API_KEYS, HABITUS_API_HOST/PORT, HABITUS_LISTENER_AE_TITLE/PORT, "
        "HABITUS_SPOOL_DIR, HABITUS_REDIS_URL. Every setting, with its default: the "
        "'Settings' table of README.md; deployment (PACS, Docker, Helm): docs/deploy.md.",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:  # imported only when used: it pulls in the whole service
        from service.serve import main
    except ModuleNotFoundError as exc:  # installed without the api extra
        raise HabitusError(
            f"habitus serve needs the api extra ({exc.name} is not installed): "
            "pip install -e '.[api,cpu]' in a checkout"
        ) from exc
    return int(main())
