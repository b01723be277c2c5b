"""Bounds on what one template may cost: time and output size, per render.

Jinja's sandbox stops a template reaching Python internals, but not from spending the
machine: ``{{ 'x' * 10**9 }}`` (folded at *compile* time by Jinja's optimiser unless the
operator is intercepted), ``{{ 10 ** 10 ** 9 }}``, ``{{ 'x'|center(10**9) }}``,
``'{:>999999999}'.format(1)``, nested ``{% for %}`` loops, or a macro that calls itself
twice per level. `plan` runs such templates from any pull request, so each render gets:

- a size budget, checked *before* an operation that would allocate more (``*``, ``**``,
  ``+``, ``%``, format widths, ``center``/``ljust``/``replace``/``join``/``indent``/... ),
  and on the streamed output;
- a time budget, enforced by a SIGALRM timer while a render runs in the main thread (a
  pure-Python loop is interrupted between bytecodes), and otherwise at every call the
  template makes;
- immutable containers (``ImmutableSandboxedEnvironment``): a template cannot
  ``recipient.update(client=...)`` or change ``vars`` for the next recipient.

Exceeding a budget raises :class:`TemplateBudgetExceeded`; the caller turns it into an
error at the template's manifest line.
"""

from __future__ import annotations

import math
import re
import signal
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 65_536  # a WhatsApp variable is at most a few thousand characters
MAX_SECONDS = 2.0  # a real template renders in microseconds
MAX_INT_DIGITS = 4_300  # CPython's own int<->str conversion limit
REARM_SECONDS = 0.1  # after the time budget, the alarm repeats this often until disarmed


class TemplateBudgetExceeded(Exception):
    """A template would take more time or build more text than one render may."""


_state = threading.local()


def _deadline() -> float | None:
    return getattr(_state, "deadline", None)


def check_time() -> None:
    """Raise when the current render is past its deadline (called at every template call)."""
    deadline = _deadline()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateBudgetExceeded(f"template took longer than {MAX_SECONDS:g} s")


def _too_big(size: float, what: str) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise TemplateBudgetExceeded(
            f"{what} would build {int(size):,} characters; a template may build at most "
            f"{MAX_OUTPUT_CHARS:,}")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        digits = exponent * math.log10(abs(base))
        if digits > MAX_INT_DIGITS:
            raise TemplateBudgetExceeded(f"{base} ** {exponent} has about {int(digits):,} "
                                         f"digits; at most {MAX_INT_DIGITS:,} are allowed")


_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(fmt: str) -> None:
    for match in _PERCENT_WIDTH.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise TemplateBudgetExceeded("a '*' width in a % format is not allowed")
            if number is not None and int(number) > MAX_OUTPUT_CHARS:
                _too_big(int(number), "a % format width")


def _check_format_spec(fmt: str, depth: int = 0) -> None:
    """Widths and precisions in a str.format string, nested specs included."""
    if depth > 2:
        return
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format itself will raise a clear error
    for _text, _field, spec, _conv in parsed:
        if not spec:
            continue
        if "{" in spec:
            # A width taken from an argument ('{0:{1}}') cannot be checked before it runs.
            raise TemplateBudgetExceeded("a format width taken from an argument is not allowed")
        for number in re.findall(r"\d+", spec):
            if int(number) > MAX_OUTPUT_CHARS:
                _too_big(int(number), "a format width")
        _check_format_spec(spec, depth + 1)


def _str_method_size(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Size checks for str methods that can allocate far more than their inputs."""
    name = getattr(obj, "__name__", "")
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    ints = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
    if name in ("center", "ljust", "rjust", "zfill") and ints:
        _too_big(max(ints), f"str.{name}")
    elif name == "expandtabs":
        _too_big(len(owner) * max(ints or [8]), "str.expandtabs")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        _too_big(_replace_size(owner, args[0], args[1]), "str.replace")
    elif name == "join" and args:
        _too_big(_join_size(owner, args[0]), "str.join")
    elif name in ("format", "format_map"):
        _check_format_spec(owner)


def _replace_size(text: str, old: Any, new: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * max(0, len(new) - len(old))


def _join_size(sep: str, items: Any) -> int:
    if not isinstance(items, list | tuple):
        return 0  # a generator: its items are checked as they are made
    return sum(_size(i) for i in items) + len(sep) * max(0, len(items) - 1)


def _sized_filter(name: str, inner: Callable[..., Any],
                  size: Callable[..., float]) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_time()
        _too_big(size(*args, **kwargs), f"the {name} filter")
        return inner(*args, **kwargs)

    for attr in ("jinja_pass_arg",):  # keep Jinja's @pass_context/@pass_environment marks
        if hasattr(inner, attr):
            setattr(checked, attr, getattr(inner, attr))
    return checked


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else int(value) if isinstance(value, int) else 0


def _center_size(value: Any, width: Any = 80, *_: Any, **__: Any) -> float:
    return max(len(str(value)), _width(width))


def _indent_size(s: Any, width: Any = 4, *_: Any, **__: Any) -> float:
    text = str(s)
    return len(text) + (text.count("\n") + 1) * _width(width)


def _wordwrap_size(_env: Any, s: Any, width: Any = 79, _break: Any = True,
                   wrapstring: Any = None, *_: Any, **kwargs: Any) -> float:
    text = str(s)
    wrap = kwargs.get("wrapstring", wrapstring) or "\n"
    return len(text) + (len(text) // max(_width(width), 1) + 1) * _width(str(wrap))


def _replace_filter_size(_ctx: Any, s: Any, old: Any, new: Any, *_: Any, **__: Any) -> float:
    return _replace_size(str(s), old, new)


def _join_filter_size(_ctx: Any, value: Any, d: Any = "", *_: Any, **__: Any) -> float:
    return _join_size(str(d), value)


def _format_filter_size(value: Any, *_: Any, **__: Any) -> float:
    if isinstance(value, str):
        _check_percent(value)
    return 0


# Filters whose output can be far larger than their input, with the size they would build.
_FILTER_SIZES: dict[str, Callable[..., float]] = {
    "center": _center_size,
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "replace": _replace_filter_size,
    "join": _join_filter_size,
    "format": _format_filter_size,
}


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with size and time budgets (see the module docstring)."""

    # Intercepted operators are never folded at compile time, so `'x' * 10**9` is not
    # computed by merely compiling (validating) a template.
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name, size in _FILTER_SIZES.items():
            if name in self.filters:
                self.filters[name] = _sized_filter(name, self.filters[name], size)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_time()
        if operator == "*":
            if isinstance(right, int) and _size(left):
                _too_big(_size(left) * right, "'*'")
            elif isinstance(left, int) and _size(right):
                _too_big(_size(right) * left, "'*'")
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            _too_big(_size(left) + _size(right), "'+'")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja wraps `str.format`/`format_map` when they are looked up (not when called), so
        # the width check goes here: `'{:>999999999}'.format(1)` must fail before it runs.
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_format_spec(value.__self__)
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        check_time()
        _str_method_size(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise TemplateBudgetExceeded(f"template took longer than {MAX_SECONDS:g} s")


@contextmanager
def time_budget(seconds: float = MAX_SECONDS) -> Iterator[None]:
    """Run the block under the per-render time budget. In the main thread a SIGALRM
    interrupts even a loop that makes no calls; elsewhere the budget is checked at every
    call and operator the template makes."""
    previous_deadline = _deadline()
    _state.deadline = time.monotonic() + seconds
    use_alarm = (threading.current_thread() is threading.main_thread()
                 and previous_deadline is None and hasattr(signal, "setitimer"))
    old_handler: Any = None
    if use_alarm:
        old_handler = signal.signal(signal.SIGALRM, _on_alarm)
        # and again every tenth of a second after that, until disarmed: an alarm that
        # lands in a finalizer or a gc callback has its exception printed and dropped
        # ("Exception ignored in ..."), and the render would run on unbounded
        signal.setitimer(signal.ITIMER_REAL, seconds, REARM_SECONDS)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
        _state.deadline = previous_deadline


def render_bounded(chunks: Iterator[str]) -> str:
    """Join a template's streamed output (``Template.generate``), failing as soon as it
    passes the size budget. Call inside :func:`time_budget`."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_OUTPUT_CHARS:
            raise TemplateBudgetExceeded(
                f"template output is over {MAX_OUTPUT_CHARS:,} characters")
        out.append(chunk)
    return "".join(out)


__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_SECONDS",
    "BudgetedEnvironment",
    "TemplateBudgetExceeded",
    "check_time",
    "render_bounded",
    "time_budget",
]
