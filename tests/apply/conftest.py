from __future__ import annotations

import pytest

from connectly_declare.sim import Simulator
from tests.apply.helpers import MemoryLedger, make_simulator


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def simulator() -> Simulator:
    return make_simulator()
