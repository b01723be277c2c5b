"""Checks across manifest documents: duplicate names, references to campaigns, versions
and audiences that do not exist, audience cycles, and a Sendout's `variables` against the
variables its campaign version needs.

Each problem is located at the node that has to change, and names the other place when
there is one (the first definition of a duplicate).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from connectly_declare.errors import Problem
from connectly_declare.workspace.loader import LoadedManifest
from connectly_declare.workspace.manifests import (
    Audience,
    AudienceRef,
    AudienceSpec,
    Campaign,
    Sendout,
)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _listing(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "none"


def check_references(manifests: Sequence[LoadedManifest]) -> list[Problem]:
    """Every cross-document problem among `manifests` (each already valid on its own)."""
    problems: list[Problem] = []
    first: dict[tuple[str, str], LoadedManifest] = {}
    for m in manifests:
        key = (m.kind, m.name)
        if key in first:
            problems.append(Problem(
                m.location("name"),
                f"{m.kind} {m.name!r} is defined twice: here and at {first[key].location('name')}",
                "names must be unique per kind; rename or delete one",
            ))
        else:
            first[key] = m
    campaigns = {name: m for (kind, name), m in first.items() if kind == "Campaign"}
    for m in campaigns.values():
        problems.extend(_duplicate_versions(m))
    audiences = {name: m for (kind, name), m in first.items() if kind == "Audience"}
    for m in manifests:
        if isinstance(m.model, Audience):
            problems.extend(_audience_refs(m, m.model, (), audiences))
        elif isinstance(m.model, Sendout):
            problems.extend(_sendout(m, m.model, campaigns, audiences))
    problems.extend(_cycles(audiences))
    return problems


def _duplicate_versions(m: LoadedManifest) -> list[Problem]:
    """A version listed twice would make its variables ambiguous."""
    assert isinstance(m.model, Campaign)
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for i, version in enumerate(m.model.versions):
        if version.version in seen:
            problems.append(Problem(
                m.location("versions", i, "version"),
                f"versions[{i}]: version {version.version!r} is listed twice: here and at "
                f"{m.location('versions', seen[version.version], 'version')}",
                "list each version once",
            ))
        else:
            seen[version.version] = i
    return problems


def _refs(spec: AudienceSpec) -> list[tuple[str, int, str]]:
    """(list name, index, audience name) of every audience a spec refers to."""
    return [(part, i, source.audience)
            for part, sources in (("sources", spec.sources), ("exclude", spec.exclude))
            for i, source in enumerate(sources) if isinstance(source, AudienceRef)]


def _audience_refs(m: LoadedManifest, spec: AudienceSpec, prefix: tuple[str, ...],
                   audiences: dict[str, LoadedManifest]) -> list[Problem]:
    return [
        Problem(m.location(*prefix, part, i, "audience"),
                f"audience {name!r} is not defined by any Audience manifest",
                _did_you_mean(name, audiences))
        for part, i, name in _refs(spec) if name not in audiences
    ]


def _cycles(audiences: dict[str, LoadedManifest]) -> list[Problem]:
    """One problem per audience cycle, at the reference that closes it in its first member
    (alphabetically), naming the whole cycle."""
    graph: dict[str, list[tuple[str, str, int]]] = {}
    for name, m in audiences.items():
        assert isinstance(m.model, Audience)
        graph[name] = [(ref, part, i) for part, i, ref in _refs(m.model) if ref in audiences]
    problems: list[Problem] = []
    reported: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    # Iterative depth-first search: a long chain of audiences must not hit the recursion
    # limit (that would be a traceback, not a message).
    for root in sorted(graph):
        if root in state:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(graph[root])]
        while stack:
            for ref, _part, _i in stack[-1]:
                if state.get(ref) == 1:
                    cycle = path[path.index(ref):]
                    start = cycle.index(min(cycle))
                    canonical = tuple(cycle[start:] + cycle[:start])
                    if canonical not in reported:
                        reported.add(canonical)
                        problems.append(_cycle_problem(canonical, audiences, graph))
                elif ref not in state:
                    state[ref] = 1
                    path.append(ref)
                    stack.append(iter(graph[ref]))
                    break
            else:
                stack.pop()
                state[path.pop()] = 2
    return problems


def _cycle_problem(cycle: tuple[str, ...], audiences: dict[str, LoadedManifest],
                   graph: dict[str, list[tuple[str, str, int]]]) -> Problem:
    head = cycle[0]
    referenced = cycle[1] if len(cycle) > 1 else head
    part, index = next((p, i) for ref, p, i in graph[head] if ref == referenced)
    shown = " -> ".join((*cycle, head))
    return Problem(audiences[head].location(part, index, "audience"),
                   f"audience cycle: {shown}",
                   "an audience cannot include or exclude itself, directly or through others")


def _sendout(m: LoadedManifest, sendout: Sendout, campaigns: dict[str, LoadedManifest],
             audiences: dict[str, LoadedManifest]) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(sendout.audience, str):
        if sendout.audience not in audiences:
            problems.append(Problem(m.location("audience"),
                                    f"audience {sendout.audience!r} is not defined by any "
                                    "Audience manifest",
                                    _did_you_mean(sendout.audience, audiences)))
    else:
        problems.extend(_audience_refs(m, sendout.audience, ("audience",), audiences))
    declared = campaigns.get(sendout.campaign)
    if declared is None:
        problems.append(Problem(m.location("campaign"),
                                f"campaign {sendout.campaign!r} is not declared by any "
                                "Campaign manifest",
                                _did_you_mean(sendout.campaign, campaigns)))
        return problems
    campaign = declared.model
    assert isinstance(campaign, Campaign)
    needed = campaign.variables_for(sendout.version)
    if needed is None:
        versions = [v.version for v in campaign.versions]
        problems.append(Problem(
            m.location("version"),
            f"campaign {campaign.name!r} has no version {sendout.version!r} "
            f"(versions: {_listing(versions)})",
            _did_you_mean(str(sendout.version), versions),
        ))
        return problems
    return problems + _variables(m, sendout, campaign, needed)


def _variables(m: LoadedManifest, sendout: Sendout, campaign: Campaign,
               needed: list[str]) -> list[Problem]:
    which = (f"campaign {campaign.name!r} version {sendout.version!r}" if sendout.version
             is not None else f"campaign {campaign.name!r} (no version named)")
    problems: list[Problem] = []
    missing = [v for v in needed if v not in sendout.variables]
    if missing:
        problems.append(Problem(
            m.location("variables"),
            f"variables: missing {_listing(missing)}, needed by {which}",
            "give a template for each variable the campaign needs",
        ))
    for name in sendout.variables:
        if name not in needed:
            problems.append(Problem(
                m.key_location("variables", name),
                f"variables.{name}: {which} has no variable {name!r} "
                f"(it needs: {_listing(needed)})",
                _did_you_mean(name, needed),
            ))
    return problems


__all__ = ["check_references"]
