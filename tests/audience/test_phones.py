"""Phone numbers: E.164 normalisation, located reasons, and the fast path agreeing with
the phonenumbers library it shortcuts."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from connectly_declare.audience.phones import InvalidPhone, fast_e164, normalize


def library(raw: str, region: str | None = None) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def _examples() -> list[str]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE,
                     PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP,
                     PhoneNumberType.PREMIUM_RATE, PhoneNumberType.UAN):
            ex = phonenumbers.example_number_for_type(region, kind)
            if ex is not None:
                out.append(phonenumbers.format_number(ex, PhoneNumberFormat.E164))
    return out


EXAMPLES = _examples()


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+1(604) 585 2331", None, "+16045852331"),
    ("(650) 555-1234", "US", "+16505551234"),
    ("0044 20 7946 0958", "GB", "+442079460958"),
    ("0044 20 7946 0958", "US", "+442079460958"),  # "00" read as "+" where it cannot be local
    ("+44 (0)20 7946 0958", None, "+442079460958"),
    ("  +16505551234  ", None, "+16505551234"),
    ("020 7946 0958", "GB", "+442079460958"),
])
def test_normalizes_the_issue_examples(raw: str, region: str | None, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(("raw", "region", "reason"), [
    ("", "US", "empty"),
    ("+1 650 555 1234 ext 5", "US", "contains letters"),
    ("1-800-FLOWERS", "US", "contains letters"),
    ("+1650555", None, "too short"),
    ("+99912345678", None, "country code"),
    ("6505551234", None, "no country code and no default region"),
    ("+1 (555) 010-0000", None, "not a valid number"),
])
def test_invalid_numbers_say_why(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize(raw, region)
    assert reason in info.value.reason


def test_fast_path_agrees_with_the_library_on_every_regions_examples() -> None:
    accepted = 0
    for e164 in EXAMPLES:
        for variant in (e164, e164[:-1], e164 + "5", e164[:-1] + str((int(e164[-1]) + 3) % 10)):
            fast = fast_e164(variant)
            if fast is not None:
                accepted += 1
                assert fast == library(variant), variant
            assert normalize(variant) == library(variant) if library(variant) else True
    # The fast path must actually take most clean numbers, or it is not a fast path.
    assert accepted > len(EXAMPLES) // 2


@settings(max_examples=1500, deadline=None)
@given(st.integers(1, 999), st.text("0123456789", min_size=4, max_size=13))
def test_fast_path_never_accepts_what_the_library_would_not(cc: int, rest: str) -> None:
    raw = f"+{cc}{rest}"
    fast = fast_e164(raw)
    if fast is not None:
        assert fast == library(raw)


def _variants(e164: str, rng: random.Random) -> list[str]:
    number = phonenumbers.parse(e164)
    region = phonenumbers.region_code_for_number(number)
    return [
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, PhoneNumberFormat.RFC3966).removeprefix("tel:"),
        e164[:3] + " " + e164[3:],
        f" {e164} ",
        "00" + e164[1:],
    ] + ([phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)] if region else [])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXAMPLES), st.randoms())
def test_formatted_variants_of_a_valid_number_normalize_to_the_same_e164(
        e164: str, rng: random.Random) -> None:
    expected = library(e164)
    if expected is None:
        return  # an example the library itself does not validate (rare metadata quirks)
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    for variant in _variants(e164, rng):
        assert normalize(variant, region if region != "001" else None) == expected, variant
