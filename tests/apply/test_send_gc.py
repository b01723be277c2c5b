"""apply's send phase runs with the collector steadied: no pauses while sending."""

from __future__ import annotations

import gc
from collections.abc import Coroutine
from typing import Any

import pytest

from connectly_declare.apply.engine import EngineSettings
from connectly_declare.gcpause import SEND_THRESHOLDS, steady_gc


def test_steady_gc_freezes_what_exists_and_restores_everything() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    held = [{"n": [i]} for i in range(1000)]  # tracked objects alive before the phase
    with steady_gc():
        assert gc.get_threshold() == SEND_THRESHOLDS
        assert gc.get_freeze_count() >= frozen_before + len(held)
        assert gc.isenabled()  # young collections still reclaim short-lived cycles
        cycle: list[Any] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect(0) >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert held[999]["n"] == [999]


def test_steady_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), steady_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_send_plan_sends_inside_steady_gc(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectly_declare.commands import apply_send as apply_module

    seen: list[tuple[tuple[int, int, int], int]] = []

    def fake_run(coro: Coroutine[Any, Any, Any]) -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        coro.close()
        return "sent"

    monkeypatch.setattr(apply_module.asyncio, "run", fake_run)
    result = apply_module.send_plan(
        None, None, None, "http://127.0.0.1:9", in_doubt=frozenset(),  # type: ignore[arg-type]
        batch_size=100, err=None, settings=EngineSettings(), total=0)  # type: ignore[arg-type]
    assert result == "sent"
    ((thresholds, frozen),) = seen
    assert thresholds == SEND_THRESHOLDS and frozen > 0
    assert gc.get_threshold() != SEND_THRESHOLDS and gc.get_freeze_count() == 0
