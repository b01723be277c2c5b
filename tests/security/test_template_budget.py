"""Hostile templates against the budgeted sandbox, in-process: each is stopped with a clear
reason, quickly and without allocating what it asked for."""

from __future__ import annotations

import pytest
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError

from connectly_declare.templates.budget import (
    MAX_OUTPUT_CHARS,
    BudgetedEnvironment,
    TemplateBudgetExceeded,
    render_bounded,
    time_budget,
)

RECIPIENT = {"client": "+16505550123", "first_name": "Ana"}


def _render(source: str, seconds: float = 0.3) -> str:
    env = BudgetedEnvironment(undefined=StrictUndefined, autoescape=False)
    with time_budget(seconds):
        template = env.from_string(source)
        return render_bounded(template.generate(recipient=dict(RECIPIENT), vars={}))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 'x' * 10**9 }}", "'*' would build 1,000,000,000 characters"),
        ("{{ 10**9 * 'x' }}", "'*' would build 1,000,000,000 characters"),
        ("{{ ['x'] * 10**9 }}", "'*' would build 1,000,000,000 characters"),
        ("{{ 10 ** (10 ** 9) }}", "10 ** 1000000000 has about 1,000,000,000 digits"),
        ("{{ 9 ** 999999 }}", "9 ** 999999 has about 954,241 digits"),
        ("{{ '%0999999999d' % 1 }}", "a % format width would build 999,999,999 characters"),
        ("{{ '%*d' % (999999999, 1) }}", "a '*' width in a % format is not allowed"),
        ("{{ '{:>999999999}'.format(1) }}", "a format width would build 999,999,999"),
        ("{{ '{0:{1}}'.format(1, 999999999) }}", "a format width taken from an argument"),
        ("{{ '{x:>999999999}'.format_map({'x': 1}) }}", "a format width would build"),
        ("{{ 'x'.center(10**9) }}", "str.center would build 1,000,000,000"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust would build 1,000,000,000"),
        ("{{ 'x'.zfill(10**9) }}", "str.zfill would build 1,000,000,000"),
        ("{{ ('\t' * 1000).expandtabs(10**6) }}", "str.expandtabs would build"),
        ("{{ ('x' * 60000).replace('x', 'yy') }}", "str.replace would build 120,000"),
        ("{{ 'x'|center(10**9) }}", "the center filter would build 1,000,000,000"),
        ("{{ 'x'|indent(10**9) }}", "the indent filter would build"),
        ("{{ ('x' * 60000)|replace('x', 'yy') }}", "the replace filter would build 120,000"),
        ("{{ ['x' * 60000, 'y' * 60000]|join }}", "the join filter would build 120,000"),
        ("{{ '%0999999999d'|format(1) }}", "a % format width would build 999,999,999"),
        ("{{ 'x'|wordwrap(1, wrapstring='y' * 60000) }}",
         "the wordwrap filter would build 120,001"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
         "{% endfor %}{{ ns.s }}", "'+' would build 131,072 characters"),
        ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
         "template output is over 65,536 characters"),
        ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
         "template took longer than"),
        ("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(0) }}", ""),
        ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
         "template took longer than"),
        ("{{ recipient.first_name * 100000 }}", "'*' would build 300,000 characters"),
    ],
)
def test_hostile_template_is_stopped(source: str, reason: str) -> None:
    with pytest.raises((TemplateBudgetExceeded, RecursionError, SecurityError)) as caught:
        _render(source)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ recipient.update({'client': '+15550000000'}) }}",
        "{{ recipient.clear() }}",
        "{{ recipient.pop('client') }}",
        "{{ vars.setdefault('x', 1) }}",
        "{% set l = [1] %}{{ l.append(2) }}",
    ],
)
def test_template_cannot_mutate_what_it_is_given(source: str) -> None:
    with pytest.raises(SecurityError, match="is unsafe"):
        _render(source)


def test_compiling_does_not_compute_a_huge_constant() -> None:
    env = BudgetedEnvironment(undefined=StrictUndefined)
    # Jinja's optimiser folds constant expressions while compiling; an intercepted operator
    # is never folded, so validating this template allocates nothing.
    code = env.compile("{{ 'x' * 10**9 }}", raw=True)
    assert "call_binop" in code


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hola {{ recipient.first_name }}!", "Hola Ana!"),
        ("{{ '%05d' % 42 }} {{ '{:>6}'.format('ab') }}", "00042     ab"),
        ("{{ 'ab' * 3 }}{{ 2 ** 10 }}{{ 'a' + 'b' }}{{ 7 // 2 }}", "ababab1024ab3"),
        ("{{ 'x'|center(5) }}|{{ ['a', 'b']|join(', ') }}|{{ 'a-b'|replace('-', '+') }}",
         "  x  |a, b|a+b"),
        ("{% for i in range(3) %}{{ loop.index }}{% endfor %}", "123"),
        ("{{ ('x' * " + str(MAX_OUTPUT_CHARS) + ") | length }}", str(MAX_OUTPUT_CHARS)),
    ],
)
def test_ordinary_templates_render_as_jinja_does(source: str, expected: str) -> None:
    assert _render(source) == expected


def test_time_budget_outside_the_main_thread_is_checked_at_calls() -> None:
    import threading

    caught: list[BaseException] = []

    def work() -> None:
        try:
            _render("{% for a in range(100000) %}{% for b in range(100000) %}{{ a + b }}"
                    "{% endfor %}{% endfor %}", seconds=0.2)
        except BaseException as exc:  # handed to the main thread
            caught.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert isinstance(caught[0], TemplateBudgetExceeded)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_alarm_swallowed_by_a_finalizer_is_repeated() -> None:
    # The first SIGALRM lands while a finalizer runs: Python prints its exception as
    # "ignored" and drops it. The budget must still stop the loop that follows (one
    # that makes no call the budget could check at), by the alarm firing again.
    import time

    class Slow:
        def __del__(self) -> None:
            until = time.monotonic() + 0.15
            while time.monotonic() < until:  # the alarm fires in here
                pass

    started = time.monotonic()
    with pytest.raises(TemplateBudgetExceeded), time_budget(0.05):
        Slow()  # dropped at once: its __del__ runs past the deadline
        while time.monotonic() - started < 3.0:  # no template call: only an alarm stops it
            pass
    assert time.monotonic() - started < 1.0
