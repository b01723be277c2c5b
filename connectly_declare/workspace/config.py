"""`declare.yaml`: the workspace configuration, as a pydantic model.

The file never holds secrets: the API key and the PostgreSQL connection string are named
by the environment variables that hold them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from connectly_declare.workspace.manifests import QuietHours

CONFIG_FILE = "declare.yaml"
FORMAT_VERSION = 1
DEFAULT_MANIFEST_GLOBS = ("**/*.yaml", "**/*.yml")
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The simulator (`apply --sim`, `connectly-declare sim`) keeps its own ledger, never mixed
# with a real history, and sends as this business when declare.yaml names none.
SIM_LEDGER = ".declare/sim-ledger.jsonl"
SIM_BUSINESS_ID = "sim-business"
MAX_BATCH_SIZE = 1000  # the API's limit of entries per request
DEFAULT_BATCH_SIZE = 100  # entries per request: declare.yaml's batch_size when unset
DEFAULT_CONCURRENCY = 16  # requests in flight at once: declare.yaml's concurrency when unset
# Without environments, the local ledger; with them, each has its own (environment_ledger).
DEFAULT_LEDGER = ".declare/ledger.jsonl"

EnvVarName = Annotated[str, Field(pattern=ENV_VAR_PATTERN)]
# An environment's name is printed in every output and in the hidden marker line of the
# pull-request comment: no controls, bidi, spaces or Markdown (SECURITY.md, "Output").
ENVIRONMENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
EnvironmentName = Annotated[str, Field(pattern=ENVIRONMENT_NAME_PATTERN)]


def environment_ledger(name: str) -> str:
    """The default local ledger of environment `name`: each environment keeps its own
    history (a shared file would be bound to whichever environment applied first)."""
    return f".declare/ledger.{name}.jsonl"


def sim_ledger(environment: str | None) -> str:
    """The simulator's own ledger (`--sim`), apart from every real history; one per
    environment, as the real ones."""
    return f".declare/sim-ledger.{environment}.jsonl" if environment else SIM_LEDGER


def is_sim_ledger(name: str) -> bool:
    """Whether a file name under .declare/ is a simulator ledger."""
    return name.startswith("sim-ledger.") and name.endswith(".jsonl")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalState(_Strict):
    """The default ledger: a JSON Lines file inside the workspace."""

    backend: Literal["local"] = "local"
    path: str = DEFAULT_LEDGER


class PostgresState(_Strict):
    """A ledger shared by many pipelines, in PostgreSQL."""

    backend: Literal["postgres"]
    dsn_env: EnvVarName = "DECLARE_PG_DSN"
    schema_name: str = Field(default="connectly_declare", alias="schema",
                             pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # The writer lock (connectly_declare/ledger/pg_lock.py): `session` holds an advisory
    # lock on a dedicated connection, freed the moment it dies; `lease` works through a
    # transaction-pooling proxy only (pgbouncer pool_mode=transaction) and frees a killed
    # run's lock when its lease runs out. `lock_dsn_env` may name a direct connection for
    # the session lock while `dsn_env` goes through the pooler.
    lock: Literal["session", "lease"] = "session"
    lock_dsn_env: EnvVarName | None = None
    lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


StateConfig = Annotated[LocalState | PostgresState, Field(discriminator="backend")]


class EnvironmentSettings(_Strict):
    """Where and as whom to send: the parts an environment may override."""

    business_id: str | None = None
    business_id_env: EnvVarName | None = None
    base_url: str | None = None
    api_key_env: EnvVarName | None = None
    state: StateConfig | None = None


_DEFAULT_SECRET_ENV = ("CONNECTLY_API_KEY", "DECLARE_PG_DSN")


def _refuse_secrets(names: list[str], secrets: set[str | None]) -> None:
    for name in names:
        if name in secrets:
            raise ValueError(f"the variable {name} holds a secret (API key or database DSN); "
                             "templates may not read it")


_DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}


class FrequencyCap(_Strict):
    """At most `max` messages to one person in any window of `per` (e.g. 7d, 24h, 90m),
    across every sendout of the environment."""

    max: Annotated[int, Field(ge=1)]
    per: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,4}[mhd]$",
                              description="a duration: minutes (m), hours (h) or days (d)")]

    @property
    def seconds(self) -> int:
        return int(self.per[:-1]) * _DURATION_UNITS[self.per[-1]]

    def as_tuple(self) -> tuple[int, int, str]:
        """(max, seconds, "2 per 7d"): the plan's form (connectly_declare.policy.caps)."""
        return self.max, self.seconds, f"{self.max} per {self.per}"


class WorkspaceConfig(_Strict):
    """The contents of `declare.yaml`."""

    version: Literal[1] = 1
    business_id: str | None = None
    business_id_env: EnvVarName | None = None
    base_url: str = "https://api.connectly.ai"
    api_key_env: EnvVarName = "CONNECTLY_API_KEY"
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] = DEFAULT_BATCH_SIZE
    requests_per_second: Annotated[float, Field(gt=0, le=200)] = 200.0
    concurrency: Annotated[int, Field(ge=1, le=256)] = DEFAULT_CONCURRENCY
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    manifests: list[str] = Field(default_factory=lambda: list(DEFAULT_MANIFEST_GLOBS))
    exclude: list[str] = Field(default_factory=list)
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"
    state: StateConfig = Field(default_factory=LocalState)
    template_env: list[EnvVarName] = Field(default_factory=list)
    environments: dict[EnvironmentName, EnvironmentSettings] = Field(default_factory=dict)
    quiet_hours: QuietHours | None = Field(
        default=None, description="default quiet hours of every sendout, in each recipient's zone")
    frequency_cap: list[FrequencyCap] = Field(
        default_factory=list, description="caps per person across all sendouts")

    @field_validator("template_env")
    @classmethod
    def _no_secret_in_templates(cls, names: list[str], info: ValidationInfo) -> list[str]:
        # declare.yaml is edited by pull requests too: a template reading the API key would
        # print it in the plan comment (SECURITY.md, "Secrets"). Checked per item, so the
        # error points at it.
        state = info.data.get("state")
        secrets = {*_DEFAULT_SECRET_ENV, info.data.get("api_key_env")}
        if isinstance(state, PostgresState):
            secrets.add(state.dsn_env)
        _refuse_secrets(names, secrets)
        return names

    @model_validator(mode="after")
    def _no_environment_secret_in_templates(self) -> WorkspaceConfig:
        secrets: set[str | None] = set()
        for env in self.environments.values():
            secrets.add(env.api_key_env)
            if isinstance(env.state, PostgresState):
                secrets.add(env.state.dsn_env)
        _refuse_secrets(self.template_env, secrets)
        return self

    @model_validator(mode="after")
    def _one_business_source(self) -> WorkspaceConfig:
        if self.business_id is not None and self.business_id_env is not None:
            raise ValueError("give business_id or business_id_env, not both")
        return self

    def for_environment(self, name: str | None) -> ResolvedEnvironment:
        """The effective settings of environment `name` (None: no environment)."""
        if name is None:
            return ResolvedEnvironment(
                environment=None,
                business_id=self.business_id,
                business_id_env=self.business_id_env,
                base_url=self.base_url,
                api_key_env=self.api_key_env,
                state=self.state,
            )
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none are defined"
            raise KeyError(f"unknown environment {name!r} (known: {known})")
        env = self.environments[name]
        has_own_business = env.business_id is not None or env.business_id_env is not None
        return ResolvedEnvironment(
            environment=name,
            business_id=env.business_id if has_own_business else self.business_id,
            business_id_env=env.business_id_env if has_own_business else self.business_id_env,
            base_url=env.base_url or self.base_url,
            api_key_env=env.api_key_env or self.api_key_env,
            state=_environment_state(env.state or self.state, name),
        )


def _environment_state(state: StateConfig, name: str) -> StateConfig:
    """A local ledger whose path declare.yaml does not give lives at the environment's own
    default path; a path given explicitly is kept as written."""
    if isinstance(state, LocalState) and "path" not in state.model_fields_set:
        return LocalState(path=environment_ledger(name))
    return state


class ResolvedEnvironment(_Strict):
    """One environment's effective settings (the top level when no environment is chosen)."""

    environment: str | None
    business_id: str | None
    business_id_env: str | None
    base_url: str
    api_key_env: str
    state: StateConfig
