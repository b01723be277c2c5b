"""Property-based fuzzing of what a stranger controls byte for byte: manifest files,
declare.yaml and audience data files. Whatever the input, the result is a model or a
project error with a location; never another exception."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectly_declare.audience.sources import (
    SkipLog,
    SourceContext,
    SourceCounts,
    read_csv,
    read_jsonl,
)
from connectly_declare.errors import DeclareError, Location
from connectly_declare.workspace.loader import load_config, load_manifest_file
from connectly_declare.workspace.manifests import CsvSource, JsonlSource

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Pieces of YAML that matter to a loader: structure, anchors, tags, quoting, the kinds and
# fields of the manifest language, and characters that are hard to decode.
YAML_TOKENS = [
    "kind: ", "Campaign", "Audience", "Sendout", "name: ", "promo", "campaign: ",
    "audience: ", "sources:", "  - csv: ", "  - inline: ", "variables:", "  msg: ",
    "versions:", "  - version: v1", "schedule: ", "2027-01-01T10:00:00+00:00", "round: ",
    "\n", "\n---\n", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!str ",
    "!!python/object:os.system ", "!foo ", "? ", "|\n", ">-\n", "'", '"', "\\", "#", "%YAML 1.2\n",
    "{{ recipient.x }}", "{% for %}", "\t", "\x00", "\ufeff", "\u202e", "é", "1e999", "0x1F",
    "+16505550101", "9" * 40, "9" * 4400, "~", "null", "yes", "...",
]

yaml_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)
yaml_bytes = st.one_of(
    yaml_text.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=300),
    yaml_text.map(lambda t: t.encode("utf-16")),
    yaml_text.map(lambda t: t.encode("utf-8", "replace") + b"\xff\xfe"),
)


def _assert_located(problems: list[object], file: str) -> None:
    for problem in problems:
        location = problem.location  # type: ignore[attr-defined]
        assert isinstance(location, Location)
        assert location.file == file, problem
        assert str(problem)


@FUZZ
@given(yaml_bytes)
def test_any_manifest_bytes_give_models_or_located_problems(raw: bytes) -> None:
    manifests, problems = load_manifest_file(raw, "sendouts/fuzz.yaml")
    assert manifests or problems
    _assert_located(problems, "sendouts/fuzz.yaml")
    for loaded in manifests:
        assert loaded.kind in ("Campaign", "Audience", "Sendout")


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["version", "business_id", "base_url", "api_key_env", "batch_size",
                     "requests_per_second", "manifests", "state", "template_env",
                     "environments", "default_region", "bogus"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
              st.lists(st.text(max_size=8), max_size=3),
              st.fixed_dictionaries({"backend": st.sampled_from(["local", "postgres", "x"])})),
    max_size=6,
))
def test_any_declare_yaml_gives_a_config_or_located_problems(settings_: dict[str, object]) -> None:
    import yaml

    raw = yaml.safe_dump(settings_).encode("utf-8")
    config, _doc, problems = load_config(raw, "declare.yaml")
    assert (config is None) == bool(problems)
    _assert_located(problems, "declare.yaml")


@FUZZ
@given(yaml_bytes)
def test_any_declare_yaml_bytes_give_a_config_or_located_problems(raw: bytes) -> None:
    config, _doc, problems = load_config(raw, "declare.yaml")
    assert (config is None) == bool(problems)
    _assert_located(problems, "declare.yaml")


# --- audience readers -------------------------------------------------------------------

CSV_TOKENS = ["phone", "client", "first_name", ",", ";", "\t", "|", "\n", "\r\n", '"', '""',
              "+16505550101", "(650) 555-0102", "0044 20 7946 0958", "not a phone", "é",
              "\x00", "\ufeff", "\u202e", "\x1b[2J", " ", "=cmd|' /C calc'!A0", "9" * 30]
csv_bytes = st.one_of(
    st.lists(st.sampled_from(CSV_TOKENS), max_size=40).map(lambda t: "".join(t).encode()),
    st.binary(max_size=200),
    st.lists(st.sampled_from(CSV_TOKENS), max_size=20).map(
        lambda t: "".join(t).encode("latin-1", "replace")),
)
JSON_TOKENS = ['{"phone": ', '"+16505550101"', '{"client": 16505550101}', "}", "{", "[", "]",
               ",", ":", '"a"', "\n", "NaN", "Infinity", "1e999", "9" * 5000, "null", "true",
               '"\\ud800"', '"\\u0000"', "\x00", "é", "\ufeff", '"first_name": "Ada"', " "]
# Text with lone surrogates (category Cs), written as JSON escapes ("\\ud800"): JSON allows
# them, but no output can encode them (SECURITY.md, "Output").
surrogate_text = st.text(alphabet=st.characters(categories=["Cs", "Ll", "Nd", "Zs"]),
                         max_size=12)
surrogate_lines = st.lists(
    st.fixed_dictionaries({"phone": st.just("+16505550101"), "f": surrogate_text},
                          optional={"g": surrogate_text}),
    min_size=1, max_size=3,
).map(lambda objs: "".join(json.dumps(o) + "\n" for o in objs).encode())
jsonl_bytes = st.one_of(
    surrogate_lines,
    st.lists(st.sampled_from(JSON_TOKENS), max_size=30).map(lambda t: "".join(t).encode()),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"\n"),
)


def _context(path: Path) -> SourceContext:
    return SourceContext(label="data/fuzz", path=path,
                         where=Location("audiences.yaml", 4, 5), region="US",
                         counts=SourceCounts(), skips=SkipLog())


def _read_all(reader: object, source: object, data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            for client, fields, where, _header in reader(source, _context(path)):  # type: ignore[operator]
                assert client.startswith("+") and client[1:].isdigit()
                # every field can be printed: no lone surrogate gets through
                json.dumps(fields, ensure_ascii=False).encode("utf-8")
                assert where.startswith("data/fuzz:")
        except DeclareError as err:
            for problem in err.problems:
                assert problem.location.file in ("data/fuzz", "audiences.yaml"), problem
                assert str(problem.location)


@FUZZ
@given(csv_bytes, st.sampled_from(["error", "skip"]), st.sampled_from([None, ",", ";"]))
def test_any_csv_gives_recipients_or_a_located_error(
    data: bytes, on_invalid: str, delimiter: str | None
) -> None:
    source = CsvSource(csv="data/fuzz.csv", on_invalid=on_invalid,  # type: ignore[arg-type]
                       delimiter=delimiter)
    _read_all(read_csv, source, data, ".csv")


@FUZZ
@given(jsonl_bytes, st.sampled_from(["error", "skip"]))
def test_any_jsonl_gives_recipients_or_a_located_error(data: bytes, on_invalid: str) -> None:
    source = JsonlSource(jsonl="data/fuzz.jsonl", on_invalid=on_invalid)  # type: ignore[arg-type]
    _read_all(read_jsonl, source, data, ".jsonl")


@FUZZ
@given(st.text(alphabet=string.printable + "é\u202e\x00", max_size=60))
def test_any_phone_text_in_a_csv_gives_a_recipient_or_a_located_error(phone: str) -> None:
    data = ("phone\n" + '"' + phone.replace('"', '""') + '"\n').encode("utf-8")
    _read_all(read_csv, CsvSource(csv="data/fuzz.csv"), data, ".csv")


# --- a whole workspace: inline recipients and templates, through entries --------------------

JINJA_TOKENS = ["{{ ", " }}", "{% ", " %}", "recipient", ".", "first_name", "client", "vars",
                "env", "sendout", "name", "__class__", "__globals__", "|", "upper", "center(",
                "join", "format", "(", ")", "[", "]", "'x'", "*", "**", "10", "9", "+", "%",
                "for i in range(", "endfor", "if", "endif", "macro m()", "endmacro", "m()",
                "self", "cycler", "namespace", "lipsum", "loop.index", ",", " ", "~", "'{0}'"]
FIELD_VALUES = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True),
                         st.booleans(), st.none())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(template=st.lists(st.sampled_from(JINJA_TOKENS), max_size=14).map("".join),
       recipients=st.lists(st.one_of(
           st.text(alphabet="+0123456789 ()-x", max_size=16),
           st.fixed_dictionaries({"client": st.text(alphabet="+0123456789 -", max_size=14)},
                                 optional={"first_name": FIELD_VALUES, "x": FIELD_VALUES}),
       ), min_size=1, max_size=4))
def test_any_template_and_inline_audience_give_entries_or_located_errors(
    template: str, recipients: list[object]
) -> None:
    import yaml

    from connectly_declare.entries.stream import iter_entries
    from connectly_declare.workspace.load import load_workspace

    docs = [
        {"kind": "Campaign", "name": "promo", "versions": [{"version": "v1",
                                                           "variables": ["msg"]}]},
        {"kind": "Sendout", "name": "s", "campaign": "promo", "version": "v1",
         "audience": {"sources": [{"inline": recipients}]}, "variables": {"msg": template}},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "declare.yaml").write_text("version: 1\nbusiness_id: b\n", encoding="utf-8")
        (root / "m.yaml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        try:
            ws = load_workspace(root)
            entries = list(iter_entries(ws, ws.sendouts["s"], environ={}))
        except DeclareError as err:
            for problem in err.problems:
                assert problem.location.file, problem
            return
        for entry in entries:
            assert entry.client.startswith("+")
            assert isinstance(entry.variables["msg"], str)
