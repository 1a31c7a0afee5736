"""Intravenous contrast: the phases a CT can be acquired in."""

from __future__ import annotations

from enum import StrEnum


class ContrastPhase(StrEnum):
    """The contrast phase of a CT, as read from the attenuation of its vessels and organs."""

    NONE = "none"  # unenhanced
    ARTERIAL = "arterial"  # aorta bright, portal vein and liver barely enhanced
    PORTAL_VENOUS = "portal_venous"  # portal vein, liver, spleen and kidneys enhanced
    DELAYED = "delayed"  # vessels fading towards the organs; contrast excreted into urine
