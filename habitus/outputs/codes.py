"""Coded concepts for the DICOM outputs: segment semantics, algorithm families, SR concepts, units.

Wherever the DICOM content mapping resource (PS3.16) has a fitting concept it is used, with the
code meaning the standard gives it; concepts the standard lacks (waist areas, indices) go in the
local coding scheme ``99HABITUS``, which every SR written by Habitus declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.color import CIELabColor
from highdicom.sr import CodedConcept

from habitus.labels import COLORS, Tissue
from habitus.segment.base import SegmenterKind


def _sct(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator="SCT", meaning=meaning)


def _dcm(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator="DCM", meaning=meaning)


def _ucum(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator="UCUM", meaning=meaning)


# --- Segment semantics (SEG Segment Description macro) ------------------------------------------

# CID 7150 Segmentation Property Category
TISSUE = _sct("85756007", "Tissue")
ANATOMICAL_STRUCTURE = _sct("91723000", "Anatomical Structure")


@dataclass(frozen=True)
class SegmentCoding:
    """What one class means, in codes: category, type and, where the type alone is too broad,
    the anatomic region that narrows it."""

    category: CodedConcept
    property_type: CodedConcept
    anatomic_region: CodedConcept | None = None


SEGMENT_CODINGS: dict[Tissue, SegmentCoding] = {
    # CID 7166/7191 Skin.
    Tissue.SKIN: SegmentCoding(TISSUE, _sct("39937001", "Skin")),
    # CID 7166/7191 Bone (bone tissue, marrow included); the class also holds the laryngeal and
    # rib cartilages, which no single code covers together with bone.
    Tissue.BONE: SegmentCoding(TISSUE, _sct("3138006", "Bone")),
    # Skeletal muscle as in CID 8134 Anatomic Structure: more precise than CID 7166 "Muscle",
    # which would also cover the myocardium (here part of internal organs).
    Tissue.MUSCLE: SegmentCoding(TISSUE, _sct("127954009", "Skeletal muscle")),
    # The standard has no visceral-fat concept: CID 7166/7191 Fat, narrowed by the CID 4 region
    # "Intra-abdominopelvic" (peritoneal and retroperitoneal spaces down to the perirectal fat).
    Tissue.AVF: SegmentCoding(
        TISSUE, _sct("55603005", "Fat"), _sct("818987002", "Intra-abdominopelvic")
    ),
    # Fat in the subcutaneous tissue (CID 7166 Subcutaneous tissue as the region). The class also
    # holds intramuscular and intrathoracic fat (Lee et al. 2021); the segment label says so.
    Tissue.SF: SegmentCoding(
        TISSUE, _sct("55603005", "Fat"), _sct("71966008", "Subcutaneous tissue")
    ),
    # No standard concept spans solid organs, hollow viscera and the great vessels together.
    # CID 7166/7191 "Organ" names what fills most of the class; "Blood vessel" or a combined
    # post-coordinated code would mislead readers that query for organs. The segment label and
    # description carry the full definition.
    Tissue.IO: SegmentCoding(TISSUE, _sct("91772007", "Organ")),
    # CID 7153 Central nervous system (brain, spinal cord; the class adds the eyeballs).
    Tissue.CNS: SegmentCoding(ANATOMICAL_STRUCTURE, _sct("21483005", "Central nervous system")),
}

SEGMENT_DESCRIPTIONS: dict[Tissue, str] = {
    Tissue.SKIN: "Skin layer of the whole body surface",
    Tissue.BONE: "All bone with marrow; hyoid, laryngeal and rib cartilages",
    Tissue.MUSCLE: "Skeletal muscle, proximal diaphragm and crus, salivary glands",
    Tissue.AVF: "Fat of the peritoneal and retroperitoneal spaces",
    Tissue.SF: "Subcutaneous fat with intramuscular and intrathoracic fat",
    Tissue.IO: "Thoracic and abdominal organs, hollow viscera, great vessels",
    Tissue.CNS: "Intracranial structures, spinal canal and eyeballs",
}
"""Short definitions (DESIGN.md §2), each within the 64 characters of a DICOM LO value."""


def display_color(tissue: Tissue) -> CIELabColor:
    """The class colour of habitus.labels.COLORS as a CIELab RecommendedDisplayCIELabValue."""
    r, g, b = COLORS[tissue]
    return CIELabColor.from_rgb(r, g, b)


# --- Algorithm identification (CID 7162 Surface Processing Algorithm Family) ---------------------

ALGORITHM_FAMILIES: dict[SegmenterKind, CodedConcept] = {
    "onnx": _dcm("123110", "Artificial Intelligence"),
    # The rule-based segmenter classifies voxels by attenuation windows, which CID 7162 files
    # under histogram analysis; its morphological clean-up is secondary.
    "rules": _dcm("123105", "Histogram Analysis"),
}

# --- Structured report concepts ----------------------------------------------------------------

# CID 100 Quantitative Diagnostic Imaging Procedure: no whole-body CT concept is listed.
PROCEDURE_CT = CodedConcept(
    value="25045-6", scheme_designator="LN", meaning="CT unspecified body region"
)
OBSERVER_DEVICE = _dcm("121007", "Device")  # CID 270 Observer Type
VOLUME = _sct("118565006", "Volume")  # CID 7469
ATTENUATION_COEFFICIENT = _dcm("112031", "Attenuation Coefficient")  # CID 7180
MEAN = _sct("373098007", "Mean")  # CID 7464, the derivation of a mean over the ROI
MEDIAN = _sct("373099004", "Median")  # CID 7464
UNKNOWN = _sct("261665006", "Unknown")

# --- Contrast phase ------------------------------------------------------------------------------

# DCM "Contrast Phase" names the concept. PS3.16 has no value set of CT contrast phases
# (arterial, portal venous, delayed), nor do the SNOMED CT codes it lists, so the values are
# local concepts of 99HABITUS; an unknown phase is SCT "Unknown".
CONTRAST_PHASE = _dcm("109058", "Contrast Phase")
AORTA = _sct("15825003", "Aorta")  # CID 7151 / CID 4 anatomic sites of the evidence
LIVER = _sct("10200004", "Liver")

# --- Units (UCUM) ------------------------------------------------------------------------------

CUBIC_CENTIMETER = _ucum("cm3", "cubic centimeter")
HOUNSFIELD_UNIT = _ucum("[hnsf'U]", "Hounsfield unit")
SQUARE_CENTIMETER = _ucum("cm2", "square centimeter")
MILLIMETER = _ucum("mm", "millimeter")
CM2_PER_M2 = _ucum("cm2/m2", "square centimeter per square meter")
CM2_PER_KG = _ucum("cm2/kg", "square centimeter per kilogram")
CM3_PER_M2 = _ucum("cm3/m2", "cubic centimeter per square meter")
CM3_PER_KG = _ucum("cm3/kg", "cubic centimeter per kilogram")
NO_UNITS = _ucum("1", "no units")  # ratios such as VAT/SAT

# --- Local coding scheme for concepts the standard lacks ---------------------------------------

HABITUS_SCHEME = "99HABITUS"
HABITUS_CODING_SCHEME = CodingSchemeIdentificationItem(
    designator=HABITUS_SCHEME,
    name="Habitus body composition concepts",
    responsible_organization="Habitus",
)


def habitus_concept(value: str, meaning: str) -> CodedConcept:
    """A concept of the local ``99HABITUS`` scheme, e.g. ("SMI", "Skeletal muscle index")."""
    return CodedConcept(value=value, scheme_designator=HABITUS_SCHEME, meaning=meaning)


# Values of CONTRAST_PHASE, keyed by habitus.metrics.contrast.ContrastPhase values.
CONTRAST_PHASES: dict[str, CodedConcept] = {
    "none": habitus_concept("UNENHANCED", "Unenhanced (no intravenous contrast)"),
    "arterial": habitus_concept("ARTERIAL", "Arterial phase"),
    "portal_venous": habitus_concept("PORTALVENOUS", "Portal venous phase"),
    "delayed": habitus_concept("DELAYED", "Delayed phase"),
    "unknown": UNKNOWN,
}
