"""Where a plan goes, in words: the endpoint's host and whether it is the simulator, the
business, the environment and the ledger. The plan's header, the question
`apply` asks and its summary all say it the same way."""

from __future__ import annotations

from connectly_declare.endpoint import host_of, is_loopback
from connectly_declare.plan.model import Plan


def endpoint_text(plan: Plan) -> str:
    """Where `plan` sends, for people: the host, and whether it is the simulator."""
    if plan.sim:
        return (f"the simulator at {host_of(plan.endpoint)}" if plan.endpoint
                else "the simulator apply starts (on loopback)")
    if plan.endpoint is None:
        return "(endpoint not recorded)"
    if is_loopback(plan.endpoint):
        return f"{host_of(plan.endpoint)} (loopback, not the simulator's side: the real ledger)"
    return f"{host_of(plan.endpoint)} (real sends, not the simulator)"


def destination_text(plan: Plan) -> str:
    """One line naming everything about where `plan` goes (not escaped: the caller
    escapes for its output)."""
    return (f"sends to {endpoint_text(plan)}, business {plan.business_id or '(not set)'}, "
            f"environment {plan.environment or 'default'}; ledger "
            f"{plan.ledger or '(not recorded)'}")


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


__all__ = ["destination_text", "endpoint_text", "sentence"]
