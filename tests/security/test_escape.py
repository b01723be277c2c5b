"""Untrusted text through connectly_declare.report.escape, rendered by GitHub's own Markdown parser
(cmark-gfm) and checked for what a stranger's data must never achieve."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.report import escape

HOSTILE = [
    "</details><img src=x onerror=alert(1)>",
    "```\n</details>\n```",
    "`code` and ``double``",
    "| table | breaks |",
    "@org/team please look",
    "cc @octocat",
    "[click me](https://evil.example/phish)",
    "![pixel](https://evil.example/t.gif)",
    "<https://evil.example>",
    "https://evil.example/x www.evil.example",
    "<script>alert(1)</script>",
    "<!-- hidden",
    "# Heading\n---\n1. list",
    "**bold** _em_ ~~strike~~",
    "fixes #1 and GH-2",
    "owner/repo#1 gh-42 (#12) #1",
    "1. #5",
    "x\x1b]52;c;ZXZpbA==\x07y",
    "\x1b[2J\x1b[H cleared",
    "\x1b]0;title\x1b\\",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "\x9b31mC1 CSI",
    "a\x00b\rc\td",
    "&lt;already escaped&gt; &amp;",
    "\\| backslash pipe \\",
    "{{ jinja }} {% raw %}",
]


class _Collect(HTMLParser):
    """Tags, and text outside <code>/<pre>, of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("code", "pre"):
            self._code += 1

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)
        if tag in ("code", "pre"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.text.append(data)


def _render(markdown: str) -> _Collect:
    rendered = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE  # the worst case: raw HTML allowed
    )
    collected = _Collect()
    collected.feed(rendered)
    return collected


# GitHub's mention filter links `@name` in text nodes outside code and links.
_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][A-Za-z0-9-]*")
# GitHub's reference filter links `#123`, `owner/repo#123` and `GH-123` in the same text
# nodes (after character references are decoded, so `&#35;1` is `#1` there).
_REFERENCE = re.compile(r"#[0-9]|(?i:\bgh-[0-9])")


def _assert_inert(collected: _Collect, allowed_tags: set[str]) -> None:
    assert set(t.lstrip("/") for t in collected.tags) <= allowed_tags, collected.tags
    text = "".join(collected.text)
    assert not _MENTION.search(text), text
    assert not _REFERENCE.search(text), text
    assert "\x1b" not in text and "\u202e" not in text


def _table(cell: str) -> str:
    return (
        "<details><summary>s</summary>\n\n"
        f"| a | b | c |\n|---|---|---|\n| 1 | {cell} | 3 |\n\n</details>\n"
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_text_in_a_table_cell_stays_one_inert_cell(value: str) -> None:
    collected = _render(_table(escape.markdown_text(value)))
    _assert_inert(collected, {"details", "summary", "table", "thead", "tbody", "tr", "th", "td"})
    assert collected.tags.count("td") == 3
    # The reader sees the data itself (controls shown as escapes), not a rendering of it.
    shown = "".join(collected.text).replace("\u200b", "")
    assert escape.terminal(value).strip(" ") in shown


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_text_in_a_paragraph_is_plain_text(value: str) -> None:
    collected = _render(f"Sample: {escape.markdown_text(value)}\n")
    _assert_inert(collected, {"p"})


@pytest.mark.parametrize("value", HOSTILE)
def test_code_span_in_a_table_cell_stays_one_cell_of_code(value: str) -> None:
    collected = _render(_table(escape.markdown_code_span(value)))
    _assert_inert(
        collected, {"details", "summary", "table", "thead", "tbody", "tr", "th", "td", "code"}
    )
    assert collected.tags.count("td") == 3
    assert collected.tags.count("code") == 1


@pytest.mark.parametrize("value", HOSTILE)
def test_code_block_cannot_be_closed_by_its_content(value: str) -> None:
    block = escape.markdown_code_block(value + "\n" + value, info="json")
    collected = _render(f"<details>\n\n{block}\n</details>\n")
    assert [t for t in collected.tags] == ["details", "pre", "code", "/code", "/pre", "/details"]


def test_code_block_info_string_cannot_inject() -> None:
    block = escape.markdown_code_block("x", info="json\n</details>`")
    assert re.fullmatch(r"```[A-Za-z0-9_+-]*", block.splitlines()[0])
    assert _render(block).tags == ["pre", "code", "/code", "/pre"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("\x9b2J", "\\x9b2J"),
        ("\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;https://evil\\x1b\\link\\x1b]8;;\\x1b\\"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),
        ("\u202eevil\u202c", "\\u202eevil\\u202c"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("plain text, café, 😀, 中文", "plain text, café, 😀, 中文"),
    ],
)
def test_terminal_shows_controls_as_visible_escapes(raw: str, shown: str) -> None:
    assert escape.terminal(raw) == shown


def test_markdown_keeps_ordinary_text_readable() -> None:
    text = "Hola José, tu pedido #A-12 (2 items) - 50% off!"
    collected = _render(escape.markdown_text(text) + "\n")
    assert html.unescape("".join(collected.text)).replace("\u200b", "").strip() == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_terminal_output_never_holds_a_control_character(value: str) -> None:
    out = escape.terminal(value)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2028]", out)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/`|@[]()!*_#\\\n\x1b]&;:-=~ abc12GH"))))
def test_any_markdown_text_stays_inside_its_table_cell(value: str) -> None:
    collected = _render(_table(escape.markdown_text(value)))
    _assert_inert(collected, {"details", "summary", "table", "thead", "tbody", "tr", "th", "td"})
    assert collected.tags.count("td") == 3


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/`|@[]()!*_#\\\n\x1b]&;:-=~ abc12GH"))))
def test_any_code_span_stays_one_code_span(value: str) -> None:
    collected = _render(_table(escape.markdown_code_span(value)))
    assert collected.tags.count("td") == 3
    assert collected.tags.count("code") == 1


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8))
def test_json_text_is_the_same_data_without_raw_controls(value: object) -> None:
    import json

    out = escape.json_text(json.dumps(value, ensure_ascii=False))
    assert json.loads(out) == value
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2028]", out)
