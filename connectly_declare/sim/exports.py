"""The `export` lines `connectly-declare sim` prints, so another terminal's `apply --sim`
sends to it: the base URL, the API key's variable given the throwaway demo key
(never a real key), the business id's variable when declare.yaml reads it from one, and
the environment."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectly_declare.endpoint import BASE_URL_ENV
from connectly_declare.errors import DeclareError

# The key every simulated business accepts: a documented demo value, not a secret.
DEMO_API_KEY = "sim-demo-key"


@dataclass(frozen=True)
class Exports:
    api_key_env: str = "CONNECTLY_API_KEY"
    business_env: str | None = None
    business: str | None = None
    environment: str | None = None

    def lines(self, url: str) -> list[str]:
        from connectly_declare.workspace.environments import ENV_VAR

        values = [(BASE_URL_ENV, url), (self.api_key_env, DEMO_API_KEY)]
        if self.business_env and self.business:
            values.append((self.business_env, self.business))
        if self.environment:
            values.append((ENV_VAR, self.environment))
        return [f"export {name}={shlex.quote(value)}" for name, value in values]


def workspace_exports(start: Path | None, environment: str | None,
                      environ: Mapping[str, str]) -> Exports:
    """The variable names of the workspace's declare.yaml found from `start` (also with
    --catalog, when there is one), else the defaults."""
    from connectly_declare.workspace import environments
    from connectly_declare.workspace.load import load_config_only

    try:
        _root, config = load_config_only(start or Path.cwd())
        chosen = environments.chosen_environment(environment, environ)
        resolved = environments.resolve_environment(config, chosen)
    except DeclareError:
        return Exports()
    return Exports(api_key_env=resolved.api_key_env, business_env=resolved.business_id_env,
                   business=environments.sim_business_id(resolved, environ),
                   environment=chosen)


def how_to_apply(exports: Exports, url: str) -> list[str]:
    """The lines `sim` prints after its description."""
    return ["Apply against it from another terminal, in the workspace:",
            *(f"  {line}" for line in exports.lines(url)),
            "  connectly-declare apply --sim",
            "  (then `plan --sim` and `state --sim list` show the simulator's ledger)"]


__all__ = ["BASE_URL_ENV", "DEMO_API_KEY", "Exports", "how_to_apply", "workspace_exports"]
