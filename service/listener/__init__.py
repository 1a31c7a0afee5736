"""The DICOM listener: a C-ECHO/C-STORE SCP that spools received instances and queues a job
for each chosen series once its study has gone quiet."""

from service.listener.config import ListenerSettings, get_listener_settings
from service.listener.server import Listener, run_listener

__all__ = ["Listener", "ListenerSettings", "get_listener_settings", "run_listener"]
