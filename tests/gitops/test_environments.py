"""Choosing an environment: --env over DECLARE_ENV, overrides resolved, mistakes named."""

from __future__ import annotations

import pytest

from connectly_declare.errors import DeclareError
from connectly_declare.workspace.config import LocalState, PostgresState, WorkspaceConfig
from connectly_declare.workspace.environments import (
    chosen_environment,
    environment_label,
    resolve_environment,
)

CONFIG = WorkspaceConfig.model_validate({
    "business_id": "biz-top",
    "api_key_env": "CONNECTLY_API_KEY",
    "environments": {
        "staging": {"business_id_env": "STAGING_BUSINESS", "base_url": "http://127.0.0.1:1",
                    "state": {"backend": "local", "path": ".declare/staging.jsonl"}},
        "production": {"api_key_env": "PROD_KEY",
                       "state": {"backend": "postgres", "dsn_env": "PROD_PG",
                                 "schema": "sendouts", "lock": "lease"}},
    },
})


def test_the_option_wins_over_the_variable() -> None:
    assert chosen_environment("staging", {"DECLARE_ENV": "production"}) == "staging"
    assert chosen_environment(None, {"DECLARE_ENV": "production"}) == "production"
    assert chosen_environment(None, {}) is None
    assert chosen_environment(None, {"DECLARE_ENV": "  "}) is None


def test_an_environment_overrides_what_it_names_and_inherits_the_rest() -> None:
    staging = resolve_environment(CONFIG, "staging")
    assert staging.environment == "staging"
    assert (staging.business_id, staging.business_id_env) == (None, "STAGING_BUSINESS")
    assert staging.base_url == "http://127.0.0.1:1"
    assert staging.api_key_env == "CONNECTLY_API_KEY"
    assert staging.state == LocalState(path=".declare/staging.jsonl")
    production = resolve_environment(CONFIG, "production")
    assert production.business_id == "biz-top" and production.api_key_env == "PROD_KEY"
    assert isinstance(production.state, PostgresState)
    assert (production.state.dsn_env, production.state.schema_name) == ("PROD_PG", "sendouts")
    assert production.state.lock == "lease"


def test_an_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(DeclareError) as err:
        resolve_environment(CONFIG, "prod")
    assert "unknown environment 'prod'" in str(err.value)
    assert "production, staging" in str(err.value)
    assert str(err.value.problem.location) == "declare.yaml"


def test_a_workspace_with_environments_needs_a_choice() -> None:
    with pytest.raises(DeclareError, match="choose one") as err:
        resolve_environment(CONFIG, None)
    assert "--env" in err.value.problem.hint and "DECLARE_ENV" in err.value.problem.hint
    plain = WorkspaceConfig.model_validate({"business_id": "b"})
    assert resolve_environment(plain, None).environment is None
    assert environment_label(None) == "default" and environment_label("qa") == "qa"


def test_a_schema_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresState.model_validate({"backend": "postgres", "schema": 'x"; DROP'})
