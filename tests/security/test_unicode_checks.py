"""Names and manifest text that read differently from what they are."""

from __future__ import annotations

from connectly_declare.errors import Location
from connectly_declare.workspace.unicode_checks import check_name, scan, scan_file_text


def test_bidi_override_is_an_error_naming_the_code_point_and_position() -> None:
    text = "kind: Campaign\nname: promo # \u202eevil\u202c\n"
    [(sev1, p1), (sev2, p2)] = scan_file_text(text, "campaigns/a.yaml")
    assert (sev1, sev2) == ("error", "error")
    assert str(p1) == (
        "campaigns/a.yaml:2:15: U+202E RIGHT-TO-LEFT OVERRIDE, a bidirectional control, "
        "makes this text display in a different order than it is read by the tool "
        "(remove the character (it cannot be seen in a review))"
    )
    assert p2.location == Location("campaigns/a.yaml", 2, 20)
    assert p2.message.startswith("U+202C POP DIRECTIONAL FORMATTING")


def test_isolates_and_marks_are_bidi_controls_too() -> None:
    found = [(f.code_point, f.kind) for f in scan("a\u2066b\u2069c\u200fd\u061c")]
    assert found == [("U+2066", "bidi"), ("U+2069", "bidi"), ("U+200F", "bidi"),
                     ("U+061C", "bidi")]


def test_zero_width_is_a_warning_in_text_and_an_error_in_a_name() -> None:
    [(severity, problem)] = scan_file_text("description: hel\u200blo\n", "m.yaml")
    assert severity == "warning"
    assert str(problem.location) == "m.yaml:1:17"
    assert problem.message == "invisible character U+200B ZERO WIDTH SPACE"
    [(severity, problem)] = check_name("promo\ufeff", Location("m.yaml", 3, 7))
    assert severity == "error"
    assert str(problem) == (
        "m.yaml:3:7: invisible character U+FEFF ZERO WIDTH NO-BREAK SPACE "
        "(remove the character (it cannot be seen in a review))"
    )


def test_cyrillic_letter_inside_a_latin_word_is_named() -> None:
    [(severity, problem)] = check_name("summer с\u0430mpaign", Location("m.yaml", 2, 7))
    assert severity == "error"
    assert problem.message == (
        "'с\u0430mpaign' mixes scripts: U+0441 CYRILLIC SMALL LETTER ES among Latin letters "
        "looks like a Latin letter but is not"
    )
    greek = scan("pay\u03bfut", is_name=True)
    assert [(f.code_point, f.kind) for f in greek] == [("U+03BF", "mixed-script")]


def test_honest_text_in_any_script_is_clean() -> None:
    honest = ("campaña 2023 11 17", "Акция sale", "東京 summer", "Ελλάδα", "👨\u200d👩\u200d👧")
    for text in honest:
        assert [f for f in scan(text) if f.severity == "error"] == [], text
    assert check_name("campaña 2023 11 17", Location("m.yaml", 1, 1)) == []
    assert check_name("Акция", Location("m.yaml", 1, 1)) == []
    assert scan_file_text("name: Акция sale\n", "m.yaml") == []


def test_a_control_character_in_a_name_is_an_error() -> None:
    [(severity, problem)] = check_name("promo\x1b[2J", Location("m.yaml", 2, 7))
    assert severity == "error"
    assert str(problem) == ("m.yaml:2:7: control character U+001B in a name "
                            "(remove it; names are plain text)")
