"""The public names of the plan and ledger modules are all exported and all exist."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["connectly_declare.plan.make", "connectly_declare.plan.model",
           "connectly_declare.plan.sendout_diff", "connectly_declare.plan.bulkdiff",
           "connectly_declare.plan.diffnotes", "connectly_declare.plan.planfile",
           "connectly_declare.report.format", "connectly_declare.commands.plan",
           "connectly_declare.commands.state", "connectly_declare.ledger",
           "connectly_declare.ledger.codec", "connectly_declare.ledger.fold",
           "connectly_declare.ledger.local", "connectly_declare.ledger.lock"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    public = {n for n, v in vars(module).items() if not n.startswith("_")
              and getattr(v, "__module__", None) == name and callable(v)}
    assert public <= exported, f"not in __all__: {sorted(public - exported)}"
