"""DICOM and NIfTI input: read files, group series, choose the CT series, build the HU volume.

``load_ct(path)`` takes a folder, a zip, a list of files or a ``.nii``/``.nii.gz`` file and
returns a :class:`LoadedCT`: the int16 HU volume, the chosen series and a verdict for every
other series (why it was refused or not preferred), and the warnings raised on the way.
"""

from habitus.dicom.choose import SeriesVerdict
from habitus.dicom.load import LoadedCT, load_ct
from habitus.dicom.series_rules import KernelClass, SeriesRules

__all__ = ["KernelClass", "LoadedCT", "SeriesRules", "SeriesVerdict", "load_ct"]
