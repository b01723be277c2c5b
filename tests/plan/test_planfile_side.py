"""A saved plan records its side (simulator or real) and endpoint; plans of older versions
read as the real side with no endpoint; a wrong type is a damaged plan."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from connectly_declare.endpoint import clean_url, host_of, is_loopback
from connectly_declare.errors import DeclareError
from connectly_declare.plan.model import PLAN_FORMAT_VERSION, Plan
from connectly_declare.plan.planfile import plan_from_json, plan_to_json, read_plan, write_plan

PLAN = Plan(format_version=PLAN_FORMAT_VERSION, created_by="t", workspace_digest="d",
            environment="staging", business_id="b", lineage=None, serial=0, options={},
            sendouts=())


def test_side_endpoint_and_ledger_survive_a_round_trip(tmp_path: Path) -> None:
    plan = replace(PLAN, sim=True, endpoint="http://127.0.0.1:8765",
                   ledger=".declare/sim-ledger.staging.jsonl")
    write_plan(plan, tmp_path / "p.json")
    back = read_plan(tmp_path / "p.json")
    assert (back.sim, back.endpoint, back.ledger) == (
        True, "http://127.0.0.1:8765", ".declare/sim-ledger.staging.jsonl")


def test_an_older_plan_is_the_real_side_without_an_endpoint() -> None:
    body = plan_to_json(PLAN)
    for key in ("sim", "endpoint", "ledger"):
        del body[key]
    old = plan_from_json(body)
    assert (old.sim, old.endpoint, old.ledger) == (False, None, None)


@pytest.mark.parametrize("version", [1, 2])
def test_a_wrongly_typed_side_is_a_damaged_plan(tmp_path: Path, version: int) -> None:
    """Checksums intact, so only the type check can refuse it (format 1 and format 2)."""
    import hashlib

    body = plan_to_json(PLAN, entries=version == 1) | {"sim": "yes"}
    canonical = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if version == 1:
        doc = {"format_version": 1,
               "checksum": hashlib.blake2b(canonical, digest_size=16).hexdigest(), "plan": body}
        content = json.dumps(doc, ensure_ascii=False).encode()
    else:
        head = b'{"format_version":2,"plan":' + canonical + b"}\n"
        end = {"end": True, "entries": 0,
               "checksum": hashlib.blake2b(head, digest_size=16).hexdigest()}
        content = head + json.dumps(end).encode() + b"\n"
    (tmp_path / "p.json").write_bytes(content)
    with pytest.raises(DeclareError, match="sim is str, not bool"):
        read_plan(tmp_path / "p.json")


def test_endpoints_as_people_and_plans_see_them() -> None:
    assert clean_url("https://user:pw@api.example.com:8443/v1/?token=x#f") == \
        "https://api.example.com:8443/v1"
    assert host_of("https://user:pw@api.example.com:8443/v1") == "api.example.com:8443"
    assert host_of("https://api.connectly.ai") == "api.connectly.ai"
    assert is_loopback("http://127.0.0.1:8765") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:1") and not is_loopback("https://api.connectly.ai")
    assert not is_loopback("http://0.0.0.0:1")
