from typing import cast

from pydicom.sr._concepts_dict import concepts as _concepts

from habitus.labels import COLORS, TISSUE_CLASSES
from habitus.outputs.codes import (
    ALGORITHM_FAMILIES,
    SEGMENT_CODINGS,
    SEGMENT_DESCRIPTIONS,
    display_color,
    habitus_concept,
)

# pydicom's copy of PS3.16: scheme -> keyword -> code value -> (meaning, context groups)
concepts = cast(dict[str, dict[str, dict[str, tuple[str, list[int]]]]], _concepts)


def _standard_meanings(scheme: str, value: str) -> set[str]:
    """The code meanings a code has in PS3.16 context groups, per pydicom's copy of it."""
    return {
        str(by_value[value][0]).lower()
        for by_value in concepts.get(scheme, {}).values()
        if value in by_value and by_value[value][1]  # listed in at least one context group
    }


def test_every_class_has_coding_and_description() -> None:
    assert set(SEGMENT_CODINGS) == set(TISSUE_CLASSES)
    assert set(SEGMENT_DESCRIPTIONS) == set(TISSUE_CLASSES)
    assert all(0 < len(text) <= 64 for text in SEGMENT_DESCRIPTIONS.values())


def test_segment_codes_are_standard_codes_with_their_standard_meaning() -> None:
    for coding in SEGMENT_CODINGS.values():
        concepts_used = [coding.category, coding.property_type]
        if coding.anatomic_region is not None:
            concepts_used.append(coding.anatomic_region)
        for concept in concepts_used:
            meanings = _standard_meanings(concept.scheme_designator, concept.value)
            assert concept.meaning.lower() in meanings, f"{concept.value}: {meanings}"


def test_classes_are_told_apart_by_type_or_region() -> None:
    keys = {
        (c.property_type.value, getattr(c.anatomic_region, "value", None))
        for c in SEGMENT_CODINGS.values()
    }
    assert len(keys) == len(TISSUE_CLASSES)


def test_algorithm_families_are_standard() -> None:
    for family in ALGORITHM_FAMILIES.values():
        assert family.meaning.lower() in _standard_meanings("DCM", family.value)


def test_display_colour_is_the_class_colour_in_cielab() -> None:
    for tissue in TISSUE_CLASSES:
        back = display_color(tissue).to_rgb()
        assert all(abs(a - b) <= 1 for a, b in zip(back, COLORS[tissue], strict=True))


def test_local_concepts_use_the_habitus_scheme() -> None:
    concept = habitus_concept("SMI", "Skeletal muscle index")
    assert (concept.scheme_designator, concept.value) == ("99HABITUS", "SMI")
