"""Whatever a document holds, validating it gives located problems, never an exception:
random values are put into every field of valid manifests and the result is checked."""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.workspace.loader import validate_document
from connectly_declare.workspace.yamlmarks import parse

VALID: list[dict[str, Any]] = [
    {"kind": "Campaign", "name": "spring", "variables": ["a"],
     "versions": [{"version": "v1", "variables": ["first_name"]}]},
    {"kind": "Audience", "name": "vip", "where": "recipient.tier == 'gold'",
     "sources": [{"csv": "data/x.csv", "region": "US"}, {"inline": ["+16505550100"]},
                 {"audience": "other"}, {"jsonl": "data/y.jsonl"}],
     "exclude": [{"csv": "data/opt-out.csv"}]},
    {"kind": "Sendout", "name": "s", "campaign": "spring", "version": "v1",
     "audience": {"sources": [{"inline": [{"client": "+16505550100", "n": 1}]}]},
     "options": {"if_duplicate_check_unspecified": "allow_one"},
     "schedule": "2027-01-01T09:00:00Z", "vars": {"a": 1}, "variables": {"a": "{{ x }}"},
     "round": 1, "max_recipients": 5, "enabled": True},
]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(["v1", "{{", "{% if %}", "-x", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(range(len(VALID))), st.data(), values,
       st.text(min_size=1, max_size=8))
def test_any_value_anywhere_gives_located_problems(which: int, data: st.DataObject,
                                                   value: Any, extra_key: str) -> None:
    document = yaml.safe_load(yaml.safe_dump(VALID[which]))  # a deep copy
    path = data.draw(st.sampled_from(_paths(document)))
    _set(document, path, value)
    if data.draw(st.booleans()):
        document[extra_key] = value
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    docs, problems = parse(text, "m.yaml")
    for doc in docs:
        _model, doc_problems = validate_document(doc)
        problems += doc_problems
    # YAML breaks lines at NEL, LS and PS too (a generated value may hold one), and its
    # marks count them
    lines = len(re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text))
    for problem in problems:
        assert problem.location.file == "m.yaml"
        assert 1 <= problem.location.line <= lines, problem
        assert problem.message and "Traceback" not in problem.message
