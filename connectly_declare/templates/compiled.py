"""Per-recipient variables: Jinja templates compiled once, rendered sandboxed and strict.

The environment is templates.budget's `BudgetedEnvironment`, an immutable sandbox with time
and size budgets per render (a manifest from a pull request must not reach Python
internals: `{{ ''.__class__.__mro__ }}` is refused) with `StrictUndefined` (a typo
in a field name is an error, never an empty string in a message to a real person), and
without Jinja's random parts (`lipsum`, the `random` filter): the same inputs always
render the same text, so fingerprints only change when the message does.

Context of every template: `recipient` (its fields and `client`), `vars` (the sendout's
constants), `sendout` (name, campaign, version, round) and `env` (only the environment
variables listed in `declare.yaml`'s `template_env`).

Speed: most variables are constant text or `{{ recipient.first_name }}`. A template that
does not mention `recipient` is rendered once; one made only of text and plain
`recipient.<field>` / `recipient["field"]` lookups is rendered by joining strings, with
exactly Jinja's output (a property test compares the two). Everything else goes through
Jinja, compiled once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from connectly_declare.errors import DeclareError, Location, ManifestErrors, Problem
from connectly_declare.templates.budget import (
    BudgetedEnvironment,
    TemplateBudgetExceeded,
    render_bounded,
    time_budget,
)

RECIPIENT = "recipient"
# A Getattr on a dict first finds the dict's own attributes (`recipient.items` is a method
# to Jinja), so only names a plain dict does not have take the fast path.
_DICT_ATTRS = frozenset(dir(dict))


def make_environment() -> SandboxedEnvironment:
    """The one Jinja environment templates and `where` filters run in: immutable sandbox
    with time and size budgets per render (templates/budget.py), strict undefined."""
    env = BudgetedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.pop("lipsum", None)
    env.filters.pop("random", None)
    return env


class TemplateRenderError(DeclareError):
    """A template failed for one recipient: located at the template, naming the recipient's
    source row in the message."""


_MISSING_ATTRIBUTE = re.compile(r"^'dict object' has no attribute '([^']*)'$")


def _no_field(name: str, recipient: Mapping[str, Any]) -> str:
    """A recipient field the data does not have, with the nearest one it has."""
    message = f"undefined: recipient has no field {name!r}"
    close = difflib.get_close_matches(name, [str(k) for k in recipient], n=1, cutoff=0.6)
    return message + (f", did you mean {close[0]!r}?" if close else "")


def _describe(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return f"unsafe template: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined: {exc}"
    if isinstance(exc, TemplateBudgetExceeded):
        return f"over budget: {exc}"
    if isinstance(exc, TypeError) and "no loader" in str(exc):
        return "{% include %}, {% import %} and {% extends %} read no files in templates"
    if isinstance(exc, RecursionError):
        return "over budget: calls nested too deep (a macro that calls itself without end?)"
    return f"{type(exc).__name__}: {exc}"


def _template_line(where: Location, lineno: int | None) -> Location:
    # Jinja counts lines inside the template; a one-line template is the manifest's line.
    if not lineno or lineno <= 1:
        return where
    return Location(where.file, where.line + lineno - 1, 0) if where.line else where


def _field_parts(body: list[nodes.Node]) -> list[tuple[bool, str]] | None:
    """[(is_field, text_or_field_name)] when the template is only text and plain recipient
    lookups; None otherwise."""
    parts: list[tuple[bool, str]] = []
    for stmt in body:
        if not isinstance(stmt, nodes.Output):
            return None
        for node in stmt.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append((False, node.data))
            elif (isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name)
                  and node.node.name == RECIPIENT and node.attr not in _DICT_ATTRS):
                parts.append((True, node.attr))
            elif (isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name)
                  and node.node.name == RECIPIENT and isinstance(node.arg, nodes.Const)
                  and isinstance(node.arg.value, str) and node.arg.value not in _DICT_ATTRS):
                parts.append((True, node.arg.value))
            else:
                return None
    return parts


def _mentions(tree: nodes.Node, name: str) -> bool:
    return any(n.name == name for n in tree.find_all(nodes.Name))


def _env_names(tree: nodes.Node) -> Iterable[str]:
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == "env":
            yield attr.attr
    for item in tree.find_all(nodes.Getitem):
        if (isinstance(item.node, nodes.Name) and item.node.name == "env"
                and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str)):
            yield item.arg.value


@dataclass(frozen=True)
class CompiledTemplate:
    """One variable's template, ready to render per recipient."""

    variable: str
    source: str
    location: Location
    kind: str  # "constant" | "fields" | "jinja"
    constant: str  # the text, when kind is "constant"
    parts: tuple[tuple[bool, str], ...]  # (is_field, text or field name), kind "fields"
    jinja: Callable[[Mapping[str, Any]], str] | None  # kind "jinja"

    def render(self, recipient: Mapping[str, Any], row: str = "") -> str:
        """The text for one recipient (`row` names its source row in errors)."""
        if self.kind == "constant":
            return self.constant
        try:
            if self.kind == "fields":
                out = []
                for is_field, text in self.parts:
                    if is_field:
                        value = recipient[text]
                        out.append(value if type(value) is str else str(value))
                    else:
                        out.append(text)
                return "".join(out)
            assert self.jinja is not None
            return self.jinja(recipient)
        except KeyError as exc:
            message = _no_field(str(exc.args[0]), recipient)
            raise self._error(message, row, None) from None
        except Exception as exc:
            lineno = getattr(exc, "lineno", None)
            missing = _MISSING_ATTRIBUTE.search(str(exc)) if isinstance(exc, UndefinedError) \
                else None
            if missing and f"recipient.{missing.group(1)}" in self.source:
                raise self._error(_no_field(missing.group(1), recipient), row, lineno) from None
            raise self._error(_describe(exc), row, lineno) from None

    def _error(self, message: str, row: str, lineno: int | None) -> TemplateRenderError:
        who = f" (recipient at {row})" if row else ""
        return TemplateRenderError(
            f"variable {self.variable!r}: {message}{who}",
            location=_template_line(self.location, lineno),
            hint="fix the template or the data; templates see recipient, vars, sendout, env",
        )


@dataclass(frozen=True)
class TemplateContext:
    """What every template sees besides `recipient`."""

    vars: Mapping[str, Any]
    sendout: Mapping[str, Any]
    env: Mapping[str, str]
    env_allowed: frozenset[str]

    @classmethod
    def build(cls, *, vars: Mapping[str, Any], sendout: Mapping[str, Any],
              template_env: Iterable[str], environ: Mapping[str, str]) -> TemplateContext:
        allowed = frozenset(template_env)
        return cls(dict(vars), dict(sendout),
                   {k: environ[k] for k in sorted(allowed) if k in environ}, allowed)

    def as_globals(self) -> dict[str, Any]:
        return {"vars": self.vars, "sendout": self.sendout, "env": self.env}


def compile_template(env: SandboxedEnvironment, variable: str, source: str,
                     where: Location, ctx: TemplateContext) -> CompiledTemplate:
    """Compile one variable's template; raises :class:`DeclareError` at `where` on a syntax
    error, an `env` name not allowed or unset, or a constant template that fails."""

    def fail(message: str, lineno: int | None = None, hint: str = "") -> DeclareError:
        return DeclareError(f"variable {variable!r}: {message}",
                            location=_template_line(where, lineno), hint=hint)

    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise fail(f"template syntax error: {exc.message}", exc.lineno) from None
    for name in _env_names(tree):
        if name not in ctx.env_allowed:
            raise fail(f"env.{name} is not allowed in templates",
                       hint=f"list {name} under template_env in declare.yaml")
        if name not in ctx.env:
            raise fail(f"env.{name} is listed in template_env but not set in the environment",
                       hint=f"set {name} before running connectly-declare")
    try:
        # Compiling also checks names of filters and tests (`| random` is not one here).
        template = env.from_string(tree, globals=ctx.as_globals())
    except TemplateSyntaxError as exc:
        raise fail(f"template error: {exc.message}", exc.lineno) from None

    def render(recipient: Mapping[str, Any]) -> str:
        with time_budget():
            return render_bounded(template.generate(recipient=recipient))

    if not _mentions(tree, RECIPIENT):
        try:
            constant = render({})
        except Exception as exc:
            raise fail(_describe(exc), getattr(exc, "lineno", None)) from None
        return CompiledTemplate(variable, source, where, "constant", constant, (), None)
    parts = _field_parts(tree.body)
    if parts is not None:
        return CompiledTemplate(variable, source, where, "fields", "", tuple(parts), None)
    return CompiledTemplate(variable, source, where, "jinja", "", (), render)


def compile_where(env: SandboxedEnvironment, source: str, where: Location,
                  ctx: TemplateContext) -> Callable[[Mapping[str, Any], str], bool]:
    """An audience's `where` expression as a predicate over one recipient's fields."""
    try:
        expr = env.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise DeclareError(f"where: syntax error: {exc.message}", location=where) from None
    extra = ctx.as_globals()

    def keep(recipient: Mapping[str, Any], row: str) -> bool:
        try:
            with time_budget():
                return bool(expr(recipient=recipient, **extra))
        except Exception as exc:
            raise TemplateRenderError(f"where: {_describe(exc)} (recipient at {row})",
                                      location=where,
                                      hint="fix the expression or the data") from None

    return keep


def compile_all(env: SandboxedEnvironment, variables: Mapping[str, str],
                locate: Callable[[str], Location], ctx: TemplateContext,
                ) -> list[CompiledTemplate]:
    """Every variable's template, sorted by variable name; all compile errors at once."""
    compiled: list[CompiledTemplate] = []
    problems: list[Problem] = []
    for name in sorted(variables):
        try:
            compiled.append(compile_template(env, name, variables[name], locate(name), ctx))
        except DeclareError as err:
            problems.extend(err.problems)
    if problems:
        raise ManifestErrors(problems)
    return compiled


__all__ = [
    "CompiledTemplate",
    "TemplateContext",
    "TemplateRenderError",
    "compile_all",
    "compile_template",
    "compile_where",
    "make_environment",
]
