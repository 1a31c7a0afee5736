"""C-STORE and C-ECHO response statuses the listener answers with (PS3.4 B.2.3, PS3.7 C).

Each failure names why, so a PACS log tells its operator what to fix.
"""

from enum import IntEnum


class StoreStatus(IntEnum):
    SUCCESS = 0x0000
    # PS3.7 C.5: the SOP class was negotiated but instances of it are not kept here
    # (for example the PET or dose report of a PET-CT study pushed whole).
    REFUSED_SOP_CLASS_NOT_SUPPORTED = 0x0122
    # PS3.4 B.2.3: the spool could not take the instance (disk full, no permission).
    REFUSED_OUT_OF_RESOURCES = 0xA700
    # PS3.4 B.2.3: the data set lacks what its SOP class requires here (UIDs, pixel data)
    # or contradicts the request (SOP Class/Instance UID differ from the command's).
    ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    # PS3.4 B.2.3 C000-CFFF "Cannot understand": the data set could not be parsed.
    # 0xC210 is the value pynetdicom's storescp uses for an undecodable data set.
    ERROR_CANNOT_UNDERSTAND = 0xC210
    # Anything unforeseen while storing; the association goes on.
    ERROR_CANNOT_UNDERSTAND_UNEXPECTED = 0xC211
