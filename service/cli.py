"""`habitus serve`: registered into the habitus command line through an entry point."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add the `serve` command to habitus's sub-command parsers."""
    serve = commands.add_parser(
        "serve", help="run the REST API, the DICOM listener and a worker on this machine"
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from service.serve import main  # imported only when used: it pulls in the whole service

    return int(main())
