"""Making untrusted text safe to show: recipient fields, rendered variables, campaign names.

A plan is printed to a terminal and posted as a pull-request comment, and both carry text
that a stranger wrote (a CSV row, a template in a fork's manifest). Shown raw, that text
could clear or retitle the reviewer's terminal, set their clipboard (OSC 52), reorder what
they read (bidi overrides), close the comment's ``<details>`` block, break its tables,
inject links or images, or notify a whole team (``@org/team``). Every reporter passes such
text through one of these functions at the last moment, once:

- :func:`terminal` for text printed to a terminal or log;
- :func:`markdown_text` for running text and table cells of a Markdown comment;
- :func:`markdown_code_span` for an inline code span (also safe in a table cell);
- :func:`markdown_code_block` for a fenced block of several lines.

Escaping is visible rather than silent: a reviewer sees ``\\x1b[2J`` or ``\\u202e`` where
the data holds it, so a hostile row is noticed, not hidden.
"""

from __future__ import annotations

import re

# C0 controls (except none: even TAB and newlines break one-line fields), DEL, C1 controls.
_CONTROL = "\x00-\x1f\x7f-\x9f"
# Bidirectional formatting characters (Trojan Source, CVE-2021-42574) and invisible
# characters that make two different strings look the same.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = "\u200b-\u200d\u2060-\u2064\ufeff\u00ad\u180e"
_LINE_SEPARATORS = "\u2028\u2029\u0085"

_UNSAFE_CHAR = re.compile(f"[{_CONTROL}{_BIDI}{_INVISIBLE}{_LINE_SEPARATORS}]")

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """`text` with every control character, escape sequence, bidi or invisible formatting
    character replaced by a visible ``\\xNN`` / ``\\uNNNN`` (``\\n``, ``\\t``, ``\\r``),
    so printing it cannot move the cursor, change colours, set the clipboard or title,
    or reorder what the reader sees. One line in, one line out."""
    # Escaping the introducer (ESC, CSI, OSC...) is enough to make a whole escape sequence
    # inert: what follows it is printable text.
    return _UNSAFE_CHAR.sub(lambda m: _escape_char(m.group(0)), text)


# Characters with a meaning in CommonMark/GFM inline syntax or in HTML. They are replaced
# by numeric character references, which render as the character itself and never as
# syntax. A backslash escape is not used: inside tables and after other escapes it is
# easy to get wrong, and GitHub still turns an escaped `\@name` into a mention. Except
# for `-`, the most common of them in names and dates (`spring-sale`, `2027-03-01`):
# `\-` reads better than `&#45;` in the raw comment and renders the same (a `-` has no
# meaning inside a word, and escaped it starts no list, rule or heading underline).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]()<>!|#~&+=:{}\"'$^]")

# GitHub links `@user`, `@org/team`, `#123`, `GH-1`, `owner/repo#1`, bare URLs and
# `www.` even from plain text. A zero-width space after `@` is what Dependabot and
# Renovate insert for the same reason; after escaping, no URL scheme or `www.` survives.
#
# Issue references (`#123`, `owner/repo#1`, `GH-42`) are found by GitHub in the *rendered*
# text, after character references are decoded: `&#35;123` is still `#123` there. So a
# zero-width space goes between `#` and the digits, and between `GH` and `-` (what
# Renovate does too); these patterns run after the entity escaping above them.
_ZWSP = "&#8203;"
_MENTION = re.compile(r"@")
_WWW = re.compile(r"(?i)\bwww\.")
_ISSUE_REF = re.compile(r"&#35;(?=[0-9])")
_GH_REF = re.compile(r"(?i)\b(gh)(?=(?:\\-|&#45;)[0-9])")


def markdown_text(text: str, *, in_html: bool = False) -> str:
    """`text` as literal Markdown/HTML text, safe in a paragraph, a list item or a GFM table
    cell: no HTML (``</details>``), no emphasis, links, images, code, headings, tables,
    line breaks, mentions (``@org/team``), issue references or autolinks survive.

    `in_html`: the text goes inside an HTML block (``<summary>``), where Markdown is not
    parsed and a backslash escape would show: `-` stays ``&#45;`` there."""
    text = terminal(text)
    text = _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", text)
    # After the references above (none holds a `-`).
    text = text.replace("-", "&#45;" if in_html else "\\-")
    text = _MENTION.sub("@" + _ZWSP, text)
    text = _WWW.sub(lambda m: m.group(0)[:3] + _ZWSP + ".", text)
    text = _ISSUE_REF.sub("&#35;" + _ZWSP, text)
    text = _GH_REF.sub(lambda m: m.group(1) + _ZWSP, text)
    text = text.replace("&#58;//", "&#58;" + _ZWSP + "//")
    # "1. x" or "1) x" at the start of a paragraph would become a list.
    text = re.sub(r"^(\s*\d+)\.", r"\1&#46;", text)
    # Leading/trailing spaces are insignificant in Markdown, except that four leading
    # spaces start a code block in running text.
    return text.strip(" ")


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def markdown_code_span(text: str) -> str:
    """`text` as an inline code span, safe in running text and in GFM table cells.

    Code spans are never parsed for HTML, links or mentions; the fence is one backtick
    longer than any run in the text, and a `|` is escaped because GFM splits table cells
    before it parses code spans."""
    text = terminal(text).replace("|", "\\|")
    fence = "`" * (_longest_backtick_run(text) + 1)
    # CommonMark strips one space on each side, so padding keeps a leading/trailing
    # backtick from merging with the fence.
    return f"{fence} {text} {fence}"


def markdown_code_block(text: str, info: str = "") -> str:
    """`text` (several lines) as a fenced code block whose fence no line can close; ends
    with a newline. Lines keep their breaks; other controls are escaped."""
    lines = [terminal(line) for line in text.splitlines()] or [""]
    body = "\n".join(lines)
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    info = re.sub(r"[^A-Za-z0-9_+-]", "", info)
    return f"{fence}{info}\n{body}\n{fence}\n"


_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}{_INVISIBLE}{_LINE_SEPARATORS}]")


def json_text(dumped: str) -> str:
    """JSON text made by ``json.dumps(..., ensure_ascii=False)`` with DEL, C1 controls, bidi
    and invisible characters written as ``\\uXXXX`` escapes: the same data to any JSON
    parser, but inert when a person reads it in a terminal or a CI log. (JSON already
    escapes C0 controls; these characters can only occur inside strings.)"""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", dumped)


__all__ = ["json_text", "markdown_code_block", "markdown_code_span", "markdown_text",
           "terminal"]
