"""``python -m service.listener``: run the DICOM listener alone (one container in a cluster)."""

import logging

from habitus.settings import load_settings
from service.listener.wiring import run_listener

if __name__ == "__main__":
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    run_listener(settings)
