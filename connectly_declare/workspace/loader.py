"""YAML documents -> manifest and config models, with every problem located.

Each document is checked on its own here (shape, kind, field types, templates that do not
parse); references between documents are checked by :mod:`connectly_declare.workspace.load`.
Pydantic's error locations are mapped back to the YAML node they are about: a missing
field points at the mapping that lacks it, an unknown field at its key, a bad value at
the value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectly_declare.errors import Location, Problem
from connectly_declare.templates.check import expression_issue, template_issue
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import KINDS, Audience, Campaign, Sendout
from connectly_declare.workspace.pydantic_errors import translate
from connectly_declare.workspace.yamlmarks import (
    Document,
    YamlPath,
    decode,
    dotted,
    parse,
    type_name,
)

ManifestModel = Campaign | Audience | Sendout
MODELS: dict[str, type[Campaign] | type[Audience] | type[Sendout]] = {
    "Campaign": Campaign,
    "Audience": Audience,
    "Sendout": Sendout,
}


@dataclass(frozen=True)
class LoadedManifest:
    """One valid manifest document and where it came from."""

    document: Document
    model: ManifestModel

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def name(self) -> str:
        return self.model.name

    def location(self, *path: str | int) -> Location:
        """FILE:LINE:COL of the node at `path` (its deepest existing ancestor if absent)."""
        return self.document.location(self.document.mark(path))

    def key_location(self, *path: str | int) -> Location:
        return self.document.location(self.document.key_mark(path))


def load_manifest_file(raw: bytes, file: str) -> tuple[list[LoadedManifest], list[Problem]]:
    """All manifests of one file's bytes, and the problems of the documents that are not."""
    text, problems = decode(raw, file)
    if text is None:
        return [], problems
    docs, problems = parse(text, file)
    if not docs and not problems:
        return [], [Problem(Location(file, 1, 1), "file holds no manifest",
                            "add a Campaign, Audience or Sendout document, or delete the file")]
    loaded: list[LoadedManifest] = []
    for doc in docs:
        model, doc_problems = validate_document(doc)
        problems.extend(doc_problems)
        if model is not None:
            loaded.append(LoadedManifest(doc, model))
    return loaded, problems


def validate_document(doc: Document) -> tuple[ManifestModel | None, list[Problem]]:
    """The model of one document, or the problems that keep it from being one."""
    data = doc.data
    start = doc.location(doc.start)
    kinds = ", ".join(KINDS)
    if not isinstance(data, dict):
        return None, [Problem(start, f"a manifest must be a mapping with a kind ({kinds}), "
                                     f"not {type_name(data)}")]
    if "kind" not in data:
        return None, [Problem(start, f"missing kind: say which manifest this is ({kinds})",
                              "e.g. `kind: Sendout`")]
    kind = data["kind"]
    model_cls = MODELS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else ""
        return None, [Problem(doc.location(doc.mark(("kind",))),
                              f"unknown kind {kind!r} (expected one of: {kinds})", hint)]
    templates = _template_problems(data, doc)
    try:
        model = model_cls.model_validate(data)
    except ValidationError as err:
        return None, translate(err, doc, model_cls) + templates
    return (None if templates else model), templates


def load_config(raw: bytes, file: str) -> tuple[WorkspaceConfig | None, Document | None,
                                                list[Problem]]:
    """`declare.yaml`: an empty file means every default."""
    text, problems = decode(raw, file)
    if text is None:
        return None, None, problems
    docs, problems = parse(text, file)
    if problems:
        return None, None, problems
    if not docs:
        return WorkspaceConfig(), None, []
    if len(docs) > 1:
        extra = docs[1]
        return None, None, [Problem(extra.location(extra.start),
                                    f"{file} holds one document; found another here")]
    doc = docs[0]
    if not isinstance(doc.data, dict):
        return None, None, [Problem(doc.location(doc.start),
                                    f"{file} must be a mapping of settings, "
                                    f"not {type_name(doc.data)}")]
    try:
        return WorkspaceConfig.model_validate(doc.data), doc, []
    except ValidationError as err:
        return None, doc, translate(err, doc, WorkspaceConfig)


# --- templates ------------------------------------------------------------------------


def _template_problems(data: dict[str, Any], doc: Document) -> list[Problem]:
    """Templates are checked on the raw data, so a document with other mistakes still gets
    its template errors reported in the same run."""
    problems: list[Problem] = []
    kind = data.get("kind")
    if kind == "Sendout":
        variables = data.get("variables")
        if isinstance(variables, dict):
            for name, template in variables.items():
                if isinstance(template, str):
                    problems.extend(_check_template(template, doc, ("variables", name)))
        audience = data.get("audience")
        if isinstance(audience, dict) and isinstance(audience.get("where"), str):
            problems.extend(_check_where(audience["where"], doc, ("audience", "where")))
    elif kind == "Audience" and isinstance(data.get("where"), str):
        problems.extend(_check_where(data["where"], doc, ("where",)))
    return problems


def _check_template(template: str, doc: Document, path: YamlPath) -> list[Problem]:
    issue = template_issue(template)
    if issue is None:
        return []
    return [Problem(_template_location(doc, path, issue.lineno),
                    f"{dotted(path)}: template {issue.message}", issue.hint)]


def _check_where(expression: str, doc: Document, path: YamlPath) -> list[Problem]:
    issue = expression_issue(expression)
    if issue is None:
        return []
    return [Problem(_template_location(doc, path, issue.lineno),
                    f"{dotted(path)}: expression {issue.message}", issue.hint)]


def _template_location(doc: Document, path: YamlPath, lineno: int) -> Location:
    """The template's own line inside the YAML node, where it can be known exactly."""
    mark = doc.mark(path)
    if doc.is_block_scalar(path) and doc.text:
        # A `|` block's text starts on the line after the indicator.
        line = mark.line + lineno
        lines = doc.text.splitlines()
        if line <= len(lines):
            raw = lines[line - 1]
            return Location(doc.file, line, len(raw) - len(raw.lstrip()) + 1)
    return doc.location(mark)


__all__ = [
    "MODELS",
    "LoadedManifest",
    "ManifestModel",
    "load_config",
    "load_manifest_file",
    "validate_document",
]
