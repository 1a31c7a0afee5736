"""The DICOM listener: a C-ECHO/C-STORE SCP that spools received instances and queues a job
for each chosen series once its study has gone quiet."""

from service.listener.server import Listener

__all__ = ["Listener"]
