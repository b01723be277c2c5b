"""The YAML loader: values as manifests mean them, marks on every node, refusals."""

from __future__ import annotations

import pytest

from connectly_declare.workspace.yamlmarks import parse


def _one(text: str) -> object:
    docs, problems = parse(text, "f.yaml")
    assert problems == []
    (doc,) = docs
    return doc.data


@pytest.mark.parametrize(("written", "value"), [
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"), ("N", "N"),
    ("true", True), ("False", False), ("~", None), ("null", None), ("", None),
    ("+16505550100", "+16505550100"), ("0612345678", "0612345678"), ("01234", "01234"),
    ("2027-03-01", "2027-03-01"), ("2027-03-01T09:00:00", "2027-03-01T09:00:00"),
    ("12:30", "12:30"), ("0x1F", "0x1F"), ("1_000", "1_000"), ("0o17", "0o17"),
    ("15", 15), ("-3", -3), ("0", 0), ("0.25", 0.25), ("1.5e+3", 1500.0),
    ("'15'", "15"), ('"yes"', "yes"),
])
def test_scalars_follow_the_documented_rules(written: str, value: object) -> None:
    data = _one(f"v: {written}\n")
    assert data == {"v": value}
    assert type(data["v"]) is type(value)  # type: ignore[index]


def test_marks_point_at_keys_and_values() -> None:
    docs, _ = parse("# c\nkind: Sendout\nvars:\n  a: 1\nlist:\n  - x\n  - {k: v}\n", "f.yaml")
    doc = docs[0]
    assert doc.start == doc.mark(())
    assert (doc.start.line, doc.start.col) == (2, 1)
    assert (doc.mark(("vars", "a")).line, doc.mark(("vars", "a")).col) == (4, 6)
    assert (doc.key_mark(("vars", "a")).line, doc.key_mark(("vars", "a")).col) == (4, 3)
    assert (doc.mark(("list", 1, "k")).line, doc.mark(("list", 1, "k")).col) == (7, 9)
    # Absent nodes fall back to their deepest existing ancestor.
    assert doc.mark(("vars", "missing", 3)) == doc.mark(("vars",))


def test_documents_keep_their_position_and_empty_ones_are_skipped() -> None:
    docs, problems = parse("---\na: 1\n---\n---\nb: 2\n---\n", "f.yaml")
    assert problems == []
    assert [(d.index, d.data) for d in docs] == [(0, {"a": 1}), (2, {"b": 2})]


def test_duplicate_keys_are_errors_in_nested_mappings_too() -> None:
    docs, problems = parse("a:\n  b: 1\n  b: 2\n", "f.yaml")
    assert docs == []
    assert [str(p) for p in problems] == [
        "f.yaml:3:3: duplicate key 'b' (first at line 2); YAML would silently keep only "
        "the last one"]


def test_billion_laughs_is_refused_at_the_first_alias() -> None:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 30):  # 10**30 strings if expanded
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    docs, problems = parse("\n".join(lines) + "\n", "bomb.yaml")
    assert docs == []
    assert [(p.location.line, p.location.col) for p in problems] == [(2, 10)]
    assert "aliases" in problems[0].message


def test_other_documents_of_a_file_survive_a_refused_one() -> None:
    docs, problems = parse("a: &x 1\nb: *x\n---\nc: 3\n", "f.yaml")
    assert [d.data for d in docs] == [{"c": 3}]
    assert len(problems) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("a: !!python/object:os.system x\n", "unsupported YAML tag"),
    ("a: !!binary aGk=\n", "unsupported YAML tag"),
    ("a: !!set {x}\n", "unsupported YAML tag"),
    ("? [a, b]\n: 1\n", "a mapping key must be plain text"),
    ("a: " + "[" * 100 + "]" * 100 + "\n", "nested more than"),
])
def test_refusals(text: str, message: str) -> None:
    docs, problems = parse(text, "f.yaml")
    assert docs == []
    assert message in problems[0].message


def test_syntax_error_keeps_the_documents_before_it() -> None:
    docs, problems = parse("a: 1\n---\nb: [\n", "f.yaml")
    assert [d.data for d in docs] == [{"a": 1}]
    assert problems[0].message.startswith("invalid YAML:")
    assert problems[0].location.file == "f.yaml"


def test_block_scalars_are_remembered_for_template_lines() -> None:
    docs, _ = parse("t: |\n  hello\n  world\ns: plain\n", "f.yaml")
    assert docs[0].is_block_scalar(("t",))
    assert not docs[0].is_block_scalar(("s",))
    assert docs[0].data["t"] == "hello\nworld\n"


def test_encodings() -> None:
    from connectly_declare.workspace.yamlmarks import decode

    assert decode("\ufeffkind: Campaign\n".encode(), "f.yaml") == ("kind: Campaign\n", [])
    text, problems = decode("kind: C\n".encode("utf-16"), "f.yaml")
    assert text is None
    assert [str(p) for p in problems] == [
        "f.yaml:1:1: file is UTF-16 text, not UTF-8 (save it as UTF-8)"]
    text, problems = decode(b"a: 1\nb: caf\xe9\n", "f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml:2:7: file is not UTF-8 text (byte 0xE9) (save it as UTF-8)"]
