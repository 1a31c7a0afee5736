"""PET uptake per tissue: find the PET of a PET-CT study and measure SUVs per class.

- ``find``: which PT series of the study is the attenuation-corrected PET of the CT, and why
- ``suv``: SUVbw and SUL by the QIBA vendor-neutral calculation (pure functions)
- ``volume``: the PET pixels as a float volume, each slice with its own rescale
- ``tissue``: the label map on the PET grid (eroded, by fraction) and SUV statistics per class
- ``analysis``: ``analyze_pet``, the PET part of an analysis, for ``Report.pet``
"""
