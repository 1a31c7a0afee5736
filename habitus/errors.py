"""The domain errors of Habitus.

Every error says what was expected and what was found, in words a user can act on. The CLI
prints them without a traceback, the API turns them into problem documents, the listener into
DICOM statuses and the worker into a failed job with the reason.
"""


class HabitusError(Exception):
    """Base of all expected, explainable failures."""


class InputRefused(HabitusError):
    """The input cannot be analysed as given (wrong modality, bad geometry, no series...)."""


class CorruptFile(InputRefused):
    """A file is not readable DICOM (or NIfTI), or its pixel data cannot be decoded."""


class NoSuitableSeries(InputRefused):
    """No series of the study passes the series rules; the message lists why each failed."""


class GeometryRefused(InputRefused):
    """The slices do not form a regular volume (orientation, spacing, gaps, duplicates, tilt)."""


class ModelError(HabitusError):
    """A model file or its manifest is missing, inconsistent or fails its checksum."""


class OutputError(HabitusError):
    """An output object could not be built from the analysis."""
