"""A phone number's time zones, exactly as ``phonenumbers.timezone.time_zones_for_number``
answers for a valid number, without parsing it.

The library parses the number (≈300 µs) and types it against a dozen patterns before a
prefix lookup; at a million recipients that is minutes. The answer is the geographic
prefix lookup (longest prefix of the E.164 digits in ``TIMEZONE_DATA``) when the number's
type is geographic (fixed line, fixed line or mobile, or mobile in the few countries where
mobile numbers are geographic), otherwise the country-level entry. So:

- a country code whose every entry names the same zones needs no typing at all;
- otherwise the prefix lookup and the country-level entry are compared, and only when
  they differ is the number typed, with the library's own patterns compiled once per
  (region, length) into one regex whose first matching group is the type the library's
  ``_number_type_helper`` would return (it tests the same descriptions in the same order).

Tests compare this with the library on example numbers of every region and on random
numbers of multi-zone countries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.timezone import UNKNOWN_TIMEZONE
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

try:  # the set of countries whose mobile numbers are geographic (private in phonenumbers)
    from phonenumbers.phonenumberutil import _GEO_MOBILE_COUNTRIES as GEO_MOBILE
except ImportError:  # pragma: no cover - a later phonenumbers may rename it
    GEO_MOBILE = frozenset({52, 54, 55, 62, 86})

UNKNOWN: tuple[str, ...] = (UNKNOWN_TIMEZONE,)
_NON_GEO_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                  "pager", "uan", "voicemail")
_CCS = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)


def _desc(desc: object) -> tuple[frozenset[int], str] | None:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    return frozenset(getattr(desc, "possible_length", ()) or ()), pattern


def _type_regex(meta: PhoneMetadata, length: int) -> re.Pattern[str] | None:
    """One regex for numbers of `length` digits: group `n` (a non-geographic type), `f`
    (fixed line, or fixed line or mobile) or `m` (mobile), first match wins."""
    general = _desc(meta.general_desc)
    if general is None or (general[0] and length not in general[0]):
        return None
    groups = []
    named = [("n", n) for n in _NON_GEO_DESCS] + [("f", "fixed_line")]
    if not meta.same_mobile_and_fixed_line_pattern:
        named.append(("m", "mobile"))
    for group, name in named:
        got = _desc(getattr(meta, name, None))
        if got is not None and (not got[0] or length in got[0]):
            groups.append((group, got[1]))
    if not groups:
        return None
    # A named group may appear once: consecutive descriptions of one kind share it.
    body: list[str] = []
    used: set[str] = set()
    for group, pattern in groups:
        tag = group if group not in used else f"{group}{len(used)}"
        used.add(tag)
        body.append(f"(?P<{tag}>{pattern})")
    return re.compile(f"(?=(?:{general[1]})\\Z)(?:{'|'.join(body)})")


@dataclass
class _Region:
    meta: PhoneMetadata
    leading: re.Pattern[str] | None
    tables: dict[int, re.Pattern[str] | None]

    def kind(self, nsn: str) -> str | None:
        """'n', 'f' or 'm' (see _type_regex), None for the library's UNKNOWN."""
        size = len(nsn)
        if size not in self.tables:
            self.tables[size] = _type_regex(self.meta, size)
        regex = self.tables[size]
        found = regex.fullmatch(nsn) if regex is not None else None
        return found.lastgroup[0] if found is not None and found.lastgroup else None


@dataclass
class _Country:
    cc: str
    uniform: tuple[str, ...] | None  # every number of the code maps to these zones
    country_level: tuple[str, ...]
    geo_mobile: bool
    regions: list[_Region]


_COUNTRIES: dict[str, _Country] = {}


def _country_level(cc: str) -> tuple[str, ...]:
    # phonenumbers' _country_level_time_zones_for_number, prefix for prefix
    for prefix_len in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        prefix = cc[:1 + prefix_len]
        if prefix in TIMEZONE_DATA:
            return tuple(TIMEZONE_DATA[prefix])
    return UNKNOWN


def _country(cc: str) -> _Country:
    found = _COUNTRIES.get(cc)
    if found is not None:
        return found
    values = {tuple(v) for k, v in TIMEZONE_DATA.items() if k.startswith(cc)}
    level = _country_level(cc)
    uniform = level if cc in TIMEZONE_DATA and values == {level} else None
    regions = []
    for code in COUNTRY_CODE_TO_REGION_CODE.get(int(cc), ()):
        meta = PhoneMetadata.metadata_for_region(code.upper(), None)
        if meta is None:
            meta = PhoneMetadata.metadata_for_nongeo_region(int(cc), None)
        if meta is not None:
            leading = re.compile(meta.leading_digits) if meta.leading_digits else None
            regions.append(_Region(meta, leading, {}))
    found = _COUNTRIES[cc] = _Country(cc, uniform, level, int(cc) in GEO_MOBILE, regions)
    return found


def _kind(country: _Country, nsn: str) -> str | None:
    # phonenumbers' region_code_for_number, then number_type in that region
    if len(country.regions) == 1:
        return country.regions[0].kind(nsn)
    for region in country.regions:
        if region.leading is not None:
            if region.leading.match(nsn):
                return region.kind(nsn)
            continue
        kind = region.kind(nsn)
        if kind is not None:
            return kind
    return None


def country_code(e164: str) -> str | None:
    """The calling code of an E.164 number ("+4915..." -> "49"), None when unknown."""
    for size in (1, 2, 3):
        cc = e164[1:1 + size]
        if cc in _CCS:
            return cc
    return None


_BY_PREFIX: dict[str, _Country] = {}  # "+49" -> Germany's _Country, filled as met


def zones_for_number(e164: str) -> tuple[str, ...]:
    """The IANA zones of a valid E.164 number; ``("Etc/Unknown",)`` when none is known.
    The same tuple object is returned for the same answer (callers may key on it)."""
    country = _BY_PREFIX.get(e164[:2]) or _BY_PREFIX.get(e164[:3]) or _BY_PREFIX.get(e164[:4])
    if country is None:
        cc = country_code(e164)
        if cc is None:
            return UNKNOWN
        country = _BY_PREFIX["+" + cc] = _country(cc)
    if country.uniform is not None:
        return country.uniform
    digits = e164[1:]
    geographic = UNKNOWN
    for prefix_len in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
        got = TIMEZONE_DATA.get(digits[:prefix_len])
        if got is not None:
            geographic = got
            break
    cc = country.cc
    if geographic == country.country_level:
        return geographic
    kind = _kind(country, digits[len(cc):])
    if kind is None:
        return UNKNOWN
    if kind == "f" or (kind == "m" and country.geo_mobile):
        return geographic
    return country.country_level


__all__ = ["UNKNOWN", "country_code", "zones_for_number"]
