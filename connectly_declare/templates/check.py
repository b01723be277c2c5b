"""Templates and `where` expressions checked at validate time, without rendering: they
parse, and every filter and test they use exists in the sandbox that will render them
(`{{ recipient.tier | titel }}` is caught before a plan, not while sending).

Most templates are text with a few `{{ recipient.field }}` placeholders. Those are
recognised by a regular expression whose every match Jinja also parses, so the ~0.4 ms a
Jinja parse costs is only paid for the others (and once per distinct text).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes
from jinja2.lexer import describe_token
from jinja2.parser import Parser

from connectly_declare.templates.compiled import make_environment

_ENV = make_environment()

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# Literals without { } | inside, so placeholders can be cut out of the text unambiguously.
_LIT = r"""(?:-?[0-9]+|'[^'\\\n{}|]*'|"[^"\\\n{}|]*")"""
_POSTFIX = (rf"(?:\.{_NAME}|\[\s*{_LIT}\s*\]"
            r"|\[\s*(?:-?[0-9]+)?\s*:\s*(?:-?[0-9]+)?\s*\])")
_FILTER = rf"\|\s*{_NAME}(?:\(\s*(?:{_LIT}(?:\s*,\s*{_LIT})*)?\s*\))?"
# `not`, `and`... open or continue other expressions; a name that is one falls through.
_EXPR = rf"(?!(?:not|and|or|in|is|if|else)\b){_NAME}(?:{_POSTFIX})*(?:\s*{_FILTER})*"
_SIMPLE = re.compile(rf"(?:[^{{]|\{{(?![{{%#])|\{{\{{\s*{_EXPR}\s*\}}\}})*\Z")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_FILTER_NAME = re.compile(rf"\|\s*({_NAME})")


@dataclass(frozen=True)
class TemplateIssue:
    """The first problem of a template: message, 1-based line inside it, a hint."""

    message: str
    lineno: int
    hint: str = ""


def _unknown(kind: str, name: str, lineno: int) -> TemplateIssue | None:
    known = _ENV.filters if kind == "filter" else _ENV.tests
    if name in known:
        return None
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
    return TemplateIssue(f"uses an unknown {kind} {name!r}", lineno,
                         f"did you mean {close[0]!r}?" if close else "")


def _names_in(tree: nodes.Node) -> TemplateIssue | None:
    # find_all yields descendants only; a `where` expression may itself be the test.
    for node in (tree, *tree.find_all((nodes.Filter, nodes.Test))):
        if not isinstance(node, nodes.Filter | nodes.Test):
            continue
        kind = "filter" if isinstance(node, nodes.Filter) else "test"
        issue = _unknown(kind, node.name, node.lineno)
        if issue is not None:
            return issue
    return None


@functools.lru_cache(maxsize=8192)
def template_issue(source: str) -> TemplateIssue | None:
    """The first problem of a `variables` template, or None."""
    if "{" not in source:
        return None  # plain text: nothing for Jinja to parse
    if _SIMPLE.match(source):
        for placeholder in _PLACEHOLDER.finditer(source):
            for name in _FILTER_NAME.findall(placeholder.group(1)):
                issue = _unknown("filter", name,
                                 source.count("\n", 0, placeholder.start()) + 1)
                if issue is not None:
                    return issue
        return None
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as err:
        return TemplateIssue(f"does not parse: {err.message}", err.lineno or 1)
    return _names_in(tree)


@functools.lru_cache(maxsize=4096)
def expression_issue(source: str) -> TemplateIssue | None:
    """The first problem of a `where` expression, or None."""
    try:
        # What Environment.compile_expression does, without compiling to Python.
        parser = Parser(_ENV, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(f"unexpected {describe_token(token)!r}", token.lineno)
    except TemplateSyntaxError as err:
        return TemplateIssue(f"does not parse: {err.message}", err.lineno or 1)
    return _names_in(tree)


def clear_cache() -> None:
    """Forget cached verdicts (benchmarks measure a cold start)."""
    template_issue.cache_clear()
    expression_issue.cache_clear()


__all__ = ["TemplateIssue", "clear_cache", "expression_issue", "template_issue"]
