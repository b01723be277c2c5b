"""The benchmarks build ledgers in the order apply writes them (bench/apply_order.py):
checked here against the order the real engine writes with requests in flight, so a
change in how apply writes its ledger shows up as a benchmark that no longer measures it."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from connectly_declare.ledger.base import Intent, Outcome, Record
from connectly_declare.sim import Simulator
from tests.apply.helpers import MemoryLedger, sends
from tests.apply.test_engine import run

ORDER = Path(__file__).resolve().parents[2] / "bench" / "apply_order.py"


def apply_order() -> ModuleType:
    spec = importlib.util.spec_from_file_location("apply_order", ORDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["apply_order"] = module
    spec.loader.exec_module(module)
    return module


def gaps(records: Iterable[Record | tuple[str, str]]) -> Counter[int]:
    """For each outcome, how many other batches' intents were written between its own
    intent and it."""
    opened: dict[str, int] = {}
    intents = 0
    found: Counter[int] = Counter()
    for record in records:
        kind, batch = ((type(record).__name__, record.batch_id)
                       if isinstance(record, Intent | Outcome) else record)
        if kind == "Intent":
            opened[batch] = intents
            intents += 1
        elif kind == "Outcome":
            found[intents - opened.pop(batch) - 1] += 1
    assert not opened
    return found


def test_the_benchmarks_ledger_order_is_the_engines(ledger: MemoryLedger,
                                                    simulator: Simulator) -> None:
    run(sends(2_000), ledger, simulator, batch_size=50)  # 40 batches, 4 in flight
    written = gaps(r for r in ledger.items if isinstance(r, Intent | Outcome))
    modelled = gaps(apply_order().in_flight_order(
        ((("Intent", f"b{n}"), ("Outcome", f"b{n}")) for n in range(40)), 4))
    assert written == modelled == Counter({3: 37, 2: 1, 1: 1, 0: 1})
    # one request at a time: each outcome right after its intent
    assert gaps(apply_order().in_flight_order(
        ((("Intent", f"b{n}"), ("Outcome", f"b{n}")) for n in range(40)), 1)) == {0: 40}
