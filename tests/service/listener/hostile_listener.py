"""A listener in a process of its own, so that its memory can be read from /proc.

Settings come from the environment (HABITUS_LISTENER_*), the known nodes as JSON from
HABITUS_TEST_NODES. It logs to stderr, prints its port on stdout and runs until stdin closes.
Nothing is submitted: studies wait in the spool for the tests to look at.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from habitus.nodes import DicomNode
from habitus.settings import ListenerSettings
from service.listener import Listener


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    nodes = [DicomNode(**node) for node in json.loads(os.environ.get("HABITUS_TEST_NODES", "[]"))]
    listener = Listener(ListenerSettings(), lambda study, origin: [], nodes, fsync=False).start()
    sys.stdout.write(f"{listener.port}\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the test closes its end
    listener.stop()


if __name__ == "__main__":
    main()
