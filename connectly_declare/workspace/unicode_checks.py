"""Unicode that makes text read differently from what it is.

A reviewer approves what they *see*. Three tricks make a manifest show one thing and mean
another, so each is reported with its code point and where it is:

- bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and friends, "Trojan Source",
  CVE-2021-42574) reorder how a line is displayed: always an error;
- invisible characters (U+200B ZERO WIDTH SPACE, U+FEFF...) make two different names look
  equal: an error in a name, a warning elsewhere (ZWJ and ZWNJ are legitimate in emoji
  sequences and in some scripts' running text);
- a control character (ESC, BEL...) in a name: always an error;
- a single word that mixes Latin with Cyrillic or Greek letters (``саmpaign`` with a
  Cyrillic ``а``) is a confusable spoof of another name: an error in a name, a warning in
  other text (a sentence may well mix scripts, one word rarely does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from connectly_declare.errors import Location, Problem

Severity = Literal["error", "warning"]

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
INVISIBLE = frozenset("\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff")
_SUSPECT = re.compile("[" + "".join(sorted(BIDI_CONTROLS | INVISIBLE)) + "]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters only
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


@dataclass(frozen=True, slots=True)
class Finding:
    """One suspicious character (or word) at a 0-based offset of the checked text."""

    offset: int
    code_point: str  # "U+202E"
    char_name: str  # "RIGHT-TO-LEFT OVERRIDE"
    kind: Literal["bidi", "invisible", "mixed-script", "control"]
    severity: Severity
    word: str = ""

    @property
    def message(self) -> str:
        if self.kind == "bidi":
            return (
                f"{self.code_point} {self.char_name}, a bidirectional control, makes this "
                "text display in a different order than it is read by the tool"
            )
        if self.kind == "invisible":
            return f"invisible character {self.code_point} {self.char_name}"
        if self.kind == "control":
            return f"control character {self.code_point} in a name"
        return (
            f"{self.word!r} mixes scripts: {self.code_point} {self.char_name} among Latin "
            "letters looks like a Latin letter but is not"
        )

    @property
    def hint(self) -> str:
        if self.kind == "mixed-script":
            return "retype the word in one script"
        if self.kind == "control":
            return "remove it; names are plain text"
        return "remove the character (it cannot be seen in a review)"


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def _name(char: str) -> str:
    return unicodedata.name(char, "UNNAMED CHARACTER")


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    for script in _CONFUSABLE_SCRIPTS:
        if name.startswith(script + " "):
            return script
    return ""


def _mixed_script(text: str, severity: Severity) -> Iterator[Finding]:
    for match in _WORD.finditer(text):
        word = match.group(0)
        scripts = {_script(c) for c in word} - {""}
        if "LATIN" not in scripts or len(scripts) < 2:
            continue
        # Name the first letter that is not Latin: that is the impostor a reader misses.
        for index, char in enumerate(word):
            if _script(char) not in ("LATIN", ""):
                yield Finding(match.start() + index, _code_point(char), _name(char),
                              "mixed-script", severity, word)
                break


def scan(text: str, *, is_name: bool = False) -> list[Finding]:
    """Every suspicious character or word in `text`, by offset. `is_name` (a campaign name,
    a key, anything matched exactly) makes invisible and mixed-script findings errors."""
    findings: list[Finding] = []
    for match in _SUSPECT.finditer(text):
        char = match.group(0)
        if char in BIDI_CONTROLS:
            findings.append(Finding(match.start(), _code_point(char), _name(char), "bidi", "error"))
        else:
            findings.append(Finding(match.start(), _code_point(char), _name(char), "invisible",
                                    "error" if is_name else "warning"))
    findings.extend(_mixed_script(text, "error" if is_name else "warning"))
    if is_name:
        # A name is printed in plans, summaries and logs; ESC and friends have no place in
        # a campaign name (YAML's "\e" writes one invisibly to a reviewer).
        findings.extend(Finding(m.start(), _code_point(m.group(0)), "", "control", "error")
                        for m in _CONTROL.finditer(text))
    return sorted(findings, key=lambda f: f.offset)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def scan_file_text(text: str, file: str) -> list[tuple[Severity, Problem]]:
    """Findings in a whole manifest's text (comments included: a Trojan Source comment can
    hide code too), as located problems with their severity. Mixed-script words are left
    to :func:`check_name`: free text such as descriptions may mix scripts legitimately."""
    out: list[tuple[Severity, Problem]] = []
    for finding in scan(text):
        if finding.kind == "mixed-script":
            continue
        line, col = _line_col(text, finding.offset)
        out.append((finding.severity, Problem(Location(file, line, col), finding.message,
                                              finding.hint)))
    return out


def check_name(value: str, location: Location) -> list[tuple[Severity, Problem]]:
    """Findings in a name matched exactly (campaign name, variable value used as a key):
    any bidi, invisible or mixed-script character is an error, located at the name's node
    (the message names the code point; a column inside a quoted scalar would be a guess)."""
    return [(f.severity, Problem(location, f.message, f.hint)) for f in scan(value, is_name=True)]


def check_manifest(raw: bytes, file: str, names: Iterable[tuple[str, Location]],
                   ) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of one manifest file: its whole text (bidi controls are errors,
    invisible characters warnings) and the exact-match `names` in it (campaign names,
    version labels: any finding is an error). A file that is not UTF-8 is left to the
    loader, which reports it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], []
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if _SUSPECT.search(text) is not None:
        for severity, problem in scan_file_text(text, file):
            (errors if severity == "error" else warnings).append(problem)
    for value, location in names:
        for severity, problem in check_name(value, location):
            (errors if severity == "error" else warnings).append(problem)
    # A name's invisible character is also in the text: report it once, as the error.
    at_error = {p.location.line for p in errors}
    warnings = [w for w in warnings if w.location.line not in at_error]
    return errors, warnings


__all__ = ["BIDI_CONTROLS", "INVISIBLE", "Finding", "Severity", "check_manifest", "check_name",
           "scan", "scan_file_text"]
