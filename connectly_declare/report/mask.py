"""Masking every phone number in text shown to people, however it is spelled.

The recipient's own number is masked where it is shown as the client (`+1650•••1234`),
but a template can copy it into a variable (`{{ recipient.client }}`), a CSV can hold
other numbers in other columns (`(650) 555-0102`, `0044 20 7946 0958`, `16505550103`),
and names and error messages quote data. :func:`mask_numbers` finds each of them in any
text and replaces it by the masked E.164 form, so the pull-request comment can keep its
promise, "Phone numbers are masked".

How a number is found (and why this way rather than `phonenumbers.PhoneNumberMatcher`):

1. A regular expression picks *candidates*: runs of 7 or more digits (any Unicode digits, which
   `phonenumbers` reads too), optionally after `+` or `(`, with at most three separators
   (space, no-break space, `(`, `)`, `.`, `-`, `/`) between digits. It is linear (it
   never backtracks), and text without a candidate costs one regex scan.
2. Each candidate is judged by `phonenumbers` itself, with a leniency that depends on how
   it is written:

   - with an international prefix (`+`, or `00`): *possible* (a known country code and
     a possible length). The writer marked it as a phone number; a number the metadata
     does not know yet must still be masked.
   - bare digits: *valid* (the library's full check) either read as international
     (`16505550103` -> `+1 650-555-0103`) or as a national number of one of the
     workspace's regions (`(650) 555-0102` with region US). Bare digit strings are also
     order ids, amounts and dates; requiring validity keeps those readable.

   `PhoneNumberMatcher` would need one pass per region plus one for numbers without `+`,
   skips numbers glued to letters (`tel16505550101`), and costs ~100 µs per text even
   when there is no number; the pre-filter costs ~1 µs then.
3. A candidate that is not a number as a whole (two numbers separated by a space, a
   number followed by an id) is tried again group by group: the longest run of its
   digit groups that is a number is masked, then the rest of it is searched.

Verdicts are cached, so a number repeated on every row is judged once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from connectly_declare.audience.phones import fast_e164
from connectly_declare.entry import mask_phone

DEFAULT_REGIONS: tuple[str, ...] = ("US",)

_SEPARATOR = "[ \u00a0().\\-/]"
_CANDIDATE = re.compile(
    rf"(?<!\d)(?:\+{_SEPARATOR}{{0,2}}|\({_SEPARATOR}?\+?)?\d(?:{_SEPARATOR}{{0,3}}\d){{6,}}")
_GROUP = re.compile(r"\d+")
_MIN_DIGITS, _MAX_DIGITS = 7, 17
# Runs tried per candidate: a hostile run of 100,000 one-digit groups stays cheap; past
# the budget the rest of the candidate has its digits hidden (fail closed).
_MAX_WINDOWS = 256


def _digits(text: str) -> str:
    return str(phonenumbers.normalize_digits_only(text))


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


# Dates and times read as bare digits can be valid numbers (`2026-11-30 10` is a US
# number): like PhoneNumberMatcher, leave candidates shaped as dates alone unless written
# with an international prefix.
_DATE = re.compile(r"\(?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|\(?\d{1,2}[-/.]\d{1,2}[-/.]\d{4}(?!\d)")


@lru_cache(maxsize=65_536)
def _as_number(candidate: str, regions: tuple[str, ...]) -> str | None:
    """The E.164 form of `candidate` when phonenumbers reads it as a phone number."""
    if len(candidate) > 4 * _MAX_DIGITS + 4:  # more than 19 digits whatever the separators
        return None
    digits = _digits(candidate)
    international = "+" in candidate
    if not international and _DATE.match(candidate):
        return None
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    if not international:  # the common national spelling, `(650) 555-0102`, fast
        for region in regions:
            code = _country_code(region)
            fast = fast_e164(f"+{code}{digits}") if code else None
            if fast is not None:
                return fast
    fast = fast_e164("+" + digits)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse("+" + digits, None)
        if (phonenumbers.is_possible_number(number) if international
                else phonenumbers.is_valid_number(number)):
            return _e164(number)
    except NumberParseException:
        pass
    if international:
        return None
    for region in regions:
        try:
            number = phonenumbers.parse(digits, region)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return _e164(number)
    return None


@lru_cache(maxsize=256)
def _country_code(region: str) -> int:
    return int(phonenumbers.country_code_for_region(region))


@lru_cache(maxsize=65_536)
def _masked(candidate: str, regions: tuple[str, ...]) -> str:
    """`candidate` as shown: masked whole, or part by part."""
    e164 = _as_number(candidate, regions)
    if e164 is not None:
        return mask_phone(e164)
    return _mask_parts(candidate, regions)


def _mask_parts(candidate: str, regions: tuple[str, ...]) -> str:
    """`candidate` (not a number as a whole) with each run of its digit groups that is a
    number masked, longest runs first, left to right."""
    groups = [(m.start(), m.end(), m.end() - m.start()) for m in _GROUP.finditer(candidate)]
    out: list[str] = []
    done = 0  # candidate[:done] is in `out`
    i = 0
    tries = 0
    while i < len(groups) and tries < _MAX_WINDOWS:
        found = None
        total = 0
        ends: list[int] = []
        for j in range(i, len(groups)):
            total += groups[j][2]
            if total > _MAX_DIGITS:
                break
            if total >= _MIN_DIGITS:
                ends.append(j)
        for j in reversed(ends):
            tries += 1
            start = groups[i][0]
            if start > 0 and candidate[start - 1] == "+":
                start -= 1
            e164 = _as_number(candidate[start:groups[j][1]], regions)
            if e164 is not None:
                found = (start, groups[j][1], e164)
                i = j + 1
                break
        if found is None:
            i += 1
            continue
        out.append(candidate[done:found[0]])
        out.append(mask_phone(found[2]))
        done = found[1]
    rest = candidate[done:]
    if i < len(groups):  # out of budget: hide what was not judged
        rest = _GROUP.sub(lambda m: "•" * len(m.group(0)), rest)
    out.append(rest)
    return "".join(out)


def mask_numbers(text: str, regions: Iterable[str] = DEFAULT_REGIONS) -> str:
    """`text` with every phone number in it, however spelled, replaced by its masked E.164
    form (`+1650•••0102`). Text without a candidate comes back unchanged (the same object)."""
    if len(text) < _MIN_DIGITS or _CANDIDATE.search(text) is None:
        return text
    key = regions if isinstance(regions, tuple) else tuple(regions)
    return _CANDIDATE.sub(lambda m: _masked(m.group(0), key), text)


def mask_value(value: object, regions: Iterable[str] = DEFAULT_REGIONS) -> object:
    """`value` (JSON-like data: str, list, dict) with phone numbers masked in every string,
    keys included."""
    regions = tuple(regions)
    if isinstance(value, str):
        return mask_numbers(value, regions)
    if isinstance(value, dict):
        return {mask_numbers(str(k), regions): mask_value(v, regions) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, regions) for v in value]
    return value


__all__ = ["DEFAULT_REGIONS", "mask_numbers", "mask_value"]
