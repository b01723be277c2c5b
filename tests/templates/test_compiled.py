"""Templates: sandboxed, strict, deterministic, env allow-listed; the fast paths render
exactly what Jinja renders."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from connectly_declare.errors import DeclareError, Location, ManifestErrors
from connectly_declare.templates.compiled import (
    TemplateContext,
    TemplateRenderError,
    compile_all,
    compile_template,
    make_environment,
)

WHERE = Location("sendouts/spring.yaml", 14, 16)
CTX = TemplateContext.build(vars={"code": "SPRING", "n": 3},
                            sendout={"name": "spring", "campaign": "c", "version": "v1",
                                     "round": 2},
                            template_env=["STORE", "UNSET"], environ={"STORE": "Main St",
                                                                      "HOME": "/root"})
ENV = make_environment()


def compiled(source: str, variable: str = "v") -> Any:
    return compile_template(ENV, variable, source, WHERE, CTX)


def test_kinds_and_context() -> None:
    assert compiled("Hello").kind == "constant"
    assert compiled("{{ vars.code }}-{{ sendout.round }}-{{ env.STORE }}").render({}) == \
        "SPRING-2-Main St"
    assert compiled("{{ recipient.first_name }}").kind == "fields"
    assert compiled("{{ recipient.first_name | upper }}").kind == "jinja"
    r = {"first_name": "ana", "client": "+16505551234"}
    assert compiled("{{ recipient.first_name | title }} {{ recipient.client[-4:] }}").render(
        r) == "Ana 1234"
    assert compiled("{{ sendout.name }}/{{ sendout.campaign }}/{{ sendout.version }}").render(
        {}) == "spring/c/v1"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ recipient.__class__.__mro__ }}",
    "{{ recipient.first_name.__class__.__base__.__subclasses__() }}",
])
def test_sandbox_violations_name_the_template_line_and_row(source: str) -> None:
    with pytest.raises(DeclareError) as info:
        compiled(source).render({"first_name": "Ana"}, "data/vip.csv:12")
    assert info.value.problem.location == WHERE
    assert "unsafe" in str(info.value) or "undefined" in str(info.value)


def test_constant_sandbox_violation_fails_at_compile() -> None:
    with pytest.raises(DeclareError) as info:
        compiled("{{ ''.__class__.__mro__ }}")
    assert info.value.problem.location == WHERE and "unsafe" in str(info.value)


def test_undefined_field_is_an_error_not_an_empty_string() -> None:
    for source in ("{{ recipient.frist_name }}", "Hi {{ recipient.frist_name | upper }}"):
        with pytest.raises(TemplateRenderError) as info:
            compiled(source).render({"first_name": "Ana"}, "data/vip.csv:12")
        assert info.value.problem.location == WHERE
        assert "frist_name" in str(info.value) and "data/vip.csv:12" in str(info.value)


def test_env_names_must_be_listed_and_set() -> None:
    with pytest.raises(DeclareError) as info:
        compiled("{{ env.HOME }}")
    assert "env.HOME is not allowed" in str(info.value)
    assert "template_env" in info.value.problem.hint
    assert info.value.problem.location == WHERE
    with pytest.raises(DeclareError, match=r"env\.UNSET is listed in template_env but not set"):
        compiled("{{ env['UNSET'] }}")
    with pytest.raises(TemplateRenderError, match="undefined"):
        compiled("{{ env[recipient.k] }}").render({"k": "HOME"}, "x:1")


def test_no_randomness_or_clock() -> None:
    for source in ("{{ lipsum() }}", "{{ [1, 2] | random }}", "{{ now() }}"):
        with pytest.raises(DeclareError):
            compiled(source).render({}, "x:1")


def test_syntax_errors_are_collected_and_located() -> None:
    with pytest.raises(ManifestErrors) as info:
        compile_all(ENV, {"a": "{{ oops", "b": "fine", "c": "{% if %}"},
                    lambda name: Location("s.yaml", {"a": 3, "c": 5}.get(name, 1)), CTX)
    assert [p.location.line for p in info.value.problems] == [3, 5]


def test_templates_cannot_change_the_recipient_for_the_next_one() -> None:
    with pytest.raises(TemplateRenderError):
        compiled("{{ recipient.update(first_name='x') }}").render({"first_name": "a"}, "x:1")


# --- the fast path renders what Jinja renders ------------------------------------------

FIELDS = ["first_name", "city", "client", "tier"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(
    lambda t: "{" not in t and "}" not in t and "%" not in t and "#" not in t)
PART = st.one_of(
    TEXT,
    st.sampled_from(FIELDS).map(lambda f: "{{ recipient." + f + " }}"),
    st.sampled_from(FIELDS).map(lambda f: "{{recipient['" + f + "']}}"),
)
VALUES = st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none(),
                   st.floats(allow_nan=False))
PLAIN = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(PART, max_size=6).map("".join), st.fixed_dictionaries(
    {f: VALUES for f in FIELDS}))
def test_fast_path_equals_jinja(source: str, recipient: dict[str, Any]) -> None:
    t = compiled(source)
    assert t.kind in ("constant", "fields")
    assert t.render(recipient) == PLAIN.from_string(source).render(recipient=recipient)


def test_names_of_dict_methods_go_through_jinja() -> None:
    # To Jinja `recipient.items` is the dict's method, not a field; the fast path must not
    # guess otherwise.
    assert compiled("{{ recipient.items }}").kind == "jinja"
    assert compiled("{{ recipient['keys'] }}").kind == "jinja"
