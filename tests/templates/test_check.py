"""Static template checks: the fast path for simple placeholders never accepts what Jinja
rejects, and unknown filters and tests are reported with their line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError

from connectly_declare.templates.check import (
    _ENV,
    _SIMPLE,
    expression_issue,
    template_issue,
)

PIECES = ["{{", "}}", "{%", "%}", "{#", "#}", "{", "}", " ", "\n", "|", ".", "[", "]", ":",
          "-4", "0", "'", '"', "(", ")", ",", "recipient", "first_name", "title", "default",
          "not", "if", "x", "1", "a b", "-", "*", "\\"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_fast_path_accepts_only_what_jinja_parses(source: str) -> None:
    if _SIMPLE.match(source):
        try:
            _ENV.parse(source)
        except TemplateSyntaxError as err:  # pragma: no cover - the failure being tested
            raise AssertionError(f"fast path accepted {source!r}: {err}") from None


def test_fast_path_covers_the_common_shapes() -> None:
    for source in ["Hello {{ recipient.first_name }}!", "{{ recipient['first name'] }}",
                   "SPRING-{{ recipient.client[-4:] }}", "{{ vars.store | upper }}",
                   "{{ recipient.first_name | default('there') | title }}", "a { b } c"]:
        assert _SIMPLE.match(source), source
    for source in ["{{ not x }}", "{{ x(1) }}", "{% if x %}y{% endif %}", "{{- x }}"]:
        assert not _SIMPLE.match(source), source


def test_unknown_filters_and_tests_are_named_with_their_line() -> None:
    issue = template_issue("a\n{{ recipient.tier | titel }}")
    assert issue is not None
    assert (issue.message, issue.lineno, issue.hint) == (
        "uses an unknown filter 'titel'", 2, "did you mean 'title'?")
    issue = template_issue("{% if x %}\n{{ x | nope(1) }}{% endif %}")
    assert issue is not None
    assert (issue.message, issue.lineno) == ("uses an unknown filter 'nope'", 2)
    issue = expression_issue("recipient.age is nummber")
    assert issue is not None and issue.message == "uses an unknown test 'nummber'"
    # The sandbox that renders has no `random` filter: nothing random reaches a person.
    assert template_issue("{{ [1, 2] | random }}") is not None
    assert template_issue("{{ recipient.first_name | title }}") is None
    assert expression_issue('recipient.tier == "gold" and recipient.age is number') is None
