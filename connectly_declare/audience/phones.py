"""Phone numbers to E.164, with the `phonenumbers` library as the one judge of validity.

`normalize(raw, region)` returns the E.164 form (`+16505551234`) of a valid number or
raises :class:`InvalidPhone` with a reason a person can act on.

Speed: an audience of a million rows is mostly clean E.164 already, and a full
`phonenumbers.parse` + `is_valid_number` + `format_number` costs tens of microseconds. For
input that is exactly ``+`` and digits, :func:`normalize` takes a fast path that runs the
*same* checks `phonenumbers` would run (country code lookup, national-prefix stripping,
per-region possible lengths and national number patterns, the region-order rule for shared
country codes), from the library's own metadata, compiled once per country code. When the
fast path cannot be sure the library would give back the input unchanged (a national
prefix or leading zero after the country code, a non-geographic code), it defers to the
library. Tests check the two paths agree on example numbers of every region and on random
digit strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from connectly_declare.entry import E164

_LETTERS = re.compile(r"[A-Za-z]")
# The descriptions phonenumbers tries in `_number_type_helper`; a number is valid when the
# general description matches and any one of these does. Fixed line and mobile come first
# because they are what audiences hold; the answer does not depend on the order.
_TYPE_DESCS = (
    "fixed_line",
    "mobile",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code (write it as +<country code>)",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short for its country",
    phonenumbers.ValidationResult.TOO_LONG: "too long for its country",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without area code",
}


class InvalidPhone(ValueError):
    """A value that is not a valid phone number; `reason` says why, in a few words."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        super().__init__(f"{raw!r} is not a valid phone number: {reason}")


# --- the fast path: the library's validity rules, compiled once per country code -------
#
# phonenumbers calls a number valid when (_number_type_helper) the region's general
# description matches and any one type description matches, each description gated by its
# possible lengths and its national number pattern matched in full. For one number length
# that is one regex: `(?=general\Z)(?:type1|type2|...)`, fully matched. parse() would also
# strip a national prefix after "+<cc>" (so the output could differ from the input): a
# negative lookahead on the main region's national_prefix_for_parsing sends those to the
# library instead.

_ByLength = dict[int, "re.Pattern[str]"]


def _desc_parts(desc: object) -> tuple[frozenset[int], str] | None:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    return frozenset(getattr(desc, "possible_length", ()) or ()), pattern


def _region_patterns(metadata: PhoneMetadata, prefix: str | None) -> _ByLength:
    general = _desc_parts(metadata.general_desc)
    if general is None:
        return {}
    names: tuple[str, ...] = _TYPE_DESCS
    if metadata.same_mobile_and_fixed_line_pattern:
        # The library then never tests `mobile` on its own (its possible lengths may differ
        # from fixed_line's): neither may we.
        names = tuple(n for n in names if n != "mobile")
    types = [d for d in (_desc_parts(getattr(metadata, n)) for n in names) if d]
    lengths = set(general[0]) or set(range(2, 18))
    for type_lengths, _ in types:
        lengths |= type_lengths
    guard = f"(?!(?:{prefix}))" if prefix else ""
    table: _ByLength = {}
    for length in sorted(lengths):
        if general[0] and length not in general[0]:
            continue
        alts = [p for ls, p in types if not ls or length in ls]
        if alts:
            body = "|".join(f"(?:{p})" for p in alts)
            table[length] = re.compile(f"{guard}(?=(?:{general[1]})\\Z)(?:{body})")
    return table


@dataclass(frozen=True, slots=True)
class _SharedRule:
    """A country code several regions share (+1, +7, +44...): phonenumbers picks the first
    region whose leading digits match (that region then decides) or else the first region
    where the number is valid."""

    regions: tuple[tuple[re.Pattern[str] | None, _ByLength], ...]
    first: _ByLength  # the first region's table when it has no leading digits (US for +1)

    def valid(self, nsn: str) -> bool:
        size = len(nsn)
        for leading, table in self.regions:
            if leading is not None:
                if leading.match(nsn):
                    pattern = table.get(size)
                    return pattern is not None and pattern.fullmatch(nsn) is not None
                continue
            pattern = table.get(size)
            if pattern is not None and pattern.fullmatch(nsn) is not None:
                return True
        return False


_Rule = _ByLength | _SharedRule | None
_RULES: dict[str, _Rule] = {}
_CCS = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)


def _rule_for(cc: str) -> _Rule:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(int(cc), ())
    rule: _Rule = None
    if regions and "001" not in regions:  # non-geographic codes: left to the library
        metas = [PhoneMetadata.metadata_for_region(r, None) for r in regions]
        main = PhoneMetadata.metadata_for_region_or_calling_code(int(cc), regions[0])
        if main is not None and all(m is not None for m in metas):
            prefix = main.national_prefix_for_parsing or None
            tables = [(m, _region_patterns(m, prefix)) for m in metas if m is not None]
            if len(tables) == 1:
                rule = tables[0][1]
            else:
                regions_ = tuple(
                    (re.compile(m.leading_digits) if m.leading_digits is not None else None, t)
                    for m, t in tables)
                rule = _SharedRule(regions_, regions_[0][1] if regions_[0][0] is None else {})
    _RULES[cc] = rule
    return rule


_clean = E164.fullmatch


def fast_e164(raw: str) -> str | None:
    """`raw` itself when it is clean E.164 that phonenumbers accepts unchanged; None when
    the fast path does not accept it (the caller then asks the library)."""
    if _clean(raw) is None:
        return None
    # phonenumbers' _extract_country_code: the shortest prefix that is a known code.
    cc = raw[1:2]
    if cc not in _CCS:
        cc = raw[1:3]
        if cc not in _CCS:
            cc = raw[1:4]
            if cc not in _CCS:
                return None
    nsn = raw[1 + len(cc):]
    if nsn[0] == "0":  # Italian leading zeros: the library's business
        return None
    rule = _RULES[cc] if cc in _RULES else _rule_for(cc)
    if isinstance(rule, dict):
        pattern = rule.get(len(nsn))
        return raw if pattern is not None and pattern.fullmatch(nsn) is not None else None
    if rule is None:
        return None
    pattern = rule.first.get(len(nsn))  # the region loop's first step, inlined for +1
    if pattern is not None and pattern.fullmatch(nsn) is not None:
        return raw
    return raw if rule.valid(nsn) else None


# --- the library path ------------------------------------------------------------------


def _parse_valid(text: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhone(text, _PARSE_REASONS.get(exc.error_type, str(exc))) from None
    if number.extension:
        raise InvalidPhone(text, "has an extension; WhatsApp needs the number alone")
    if not phonenumbers.is_valid_number(number):
        reason = _POSSIBLE_REASONS.get(
            phonenumbers.is_possible_number_with_reason(number),
            "not a valid number for its country",
        )
        raise InvalidPhone(text, reason)
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def normalize(raw: str, region: str | None = None) -> str:
    """The E.164 form of `raw`; `region` (ISO 3166, e.g. "US") is used for numbers written
    without a country code. Raises :class:`InvalidPhone`."""
    fast = fast_e164(raw)
    if fast is not None:
        return fast
    text = raw.strip()
    if not text:
        raise InvalidPhone(raw, "empty")
    if _LETTERS.search(text):
        # phonenumbers reads letters as a keypad (1-800-FLOWERS) and drops "ext."; for a
        # WhatsApp recipient both mean the cell holds something other than one number.
        raise InvalidPhone(raw, "contains letters")
    try:
        return _parse_valid(text, region)
    except InvalidPhone as first:
        # "00" is the international prefix in most of the world; a file exported there
        # and read with region US still means "+". No valid national number starts "00".
        compact = text.lstrip()
        if compact.startswith("00"):
            try:
                return _parse_valid("+" + compact[2:], None)
            except InvalidPhone:
                pass
        if not text.startswith("+") and region is None:
            raise InvalidPhone(raw, "no country code and no default region") from None
        raise InvalidPhone(raw, first.reason) from None


__all__ = ["InvalidPhone", "fast_e164", "normalize"]
