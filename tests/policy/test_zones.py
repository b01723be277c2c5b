"""A number's time zones: connectly_declare.policy.zones gives exactly what
phonenumbers.timezone.time_zones_for_number gives, for numbers of many countries."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.timezone import time_zones_for_number

from connectly_declare.policy.zones import UNKNOWN, zones_for_number

MULTI_ZONE = ["US", "BR", "MX", "RU", "AU", "ID", "CA", "KZ"]
SINGLE_ZONE = ["DE", "FR", "IN", "JP", "NG", "ZA", "AR", "CO", "EG", "TR", "PH", "GB", "ES",
               "IT", "PT", "KE", "SA", "AE", "PL", "NL", "CL", "PE", "VN", "TH"]
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
         PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP, PhoneNumberType.UAN,
         PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PERSONAL_NUMBER)


def _library(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    return tuple(time_zones_for_number(number))


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def _random_valid(region: str, rng: random.Random, count: int) -> list[phonenumbers.PhoneNumber]:
    cc = phonenumbers.country_code_for_region(region)
    found: list[phonenumbers.PhoneNumber] = []
    for _ in range(200_000):  # bounded; every region below yields `count` long before
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice((8, 9, 10, 11))))
        try:
            number = phonenumbers.parse(f"+{cc}{digits}")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) \
                and phonenumbers.region_code_for_number(number) == region:
            found.append(number)
            if len(found) == count:
                break
    return found


def test_example_numbers_of_every_region_and_type_agree_with_the_library() -> None:
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None or not phonenumbers.is_valid_number(example):
                continue
            assert zones_for_number(_e164(example)) == _library(example), (region, kind)
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("region", MULTI_ZONE + SINGLE_ZONE)
def test_random_numbers_agree_with_the_library(region: str) -> None:
    numbers = _random_valid(region, random.Random(region), 60)
    assert len(numbers) == 60
    for number in numbers:
        assert zones_for_number(_e164(number)) == _library(number), _e164(number)


@pytest.mark.parametrize("region", MULTI_ZONE[:6])
def test_multi_zone_countries_resolve_to_several_distinct_zones(region: str) -> None:
    # The point of resolving per number: one country, several zones among its numbers.
    numbers = _random_valid(region, random.Random(f"multi-{region}"), 200)
    single = {zones_for_number(_e164(n))[0] for n in numbers
              if len(zones_for_number(_e164(n))) == 1}
    assert len(single) >= 2, (region, single)


def test_known_numbers() -> None:
    assert zones_for_number("+16502530000") == ("America/Los_Angeles",)
    assert zones_for_number("+12125551234") == ("America/New_York",)
    assert zones_for_number("+4915112345678") == ("Europe/Berlin",)
    assert zones_for_number("+5511987654321") == ("America/Sao_Paulo",)
    assert zones_for_number("+6281234567890")[0].startswith("Asia/")
    assert zones_for_number("+999123") == UNKNOWN
