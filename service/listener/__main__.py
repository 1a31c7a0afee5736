"""``python -m service.listener``: run the DICOM listener alone (one container in a cluster)."""

import logging
import os

from service.listener import run_listener

if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("HABITUS_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    run_listener()
