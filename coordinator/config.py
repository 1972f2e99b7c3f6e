"""Coordinator settings: defaults < config file < environment < command-line flags.

The file may be TOML, YAML or JSON and may use the seed's camelCase names
(``concurrencyLimit``, ``defaultTimeoutMs``, ``retryStrategy`` ...) or snake_case.
Environment variables are ``AGENTMESH_<SNAKE_CASE_NAME>``, e.g.
``AGENTMESH_DEFAULT_TIMEOUT_MS=60000``.

One piece, though long: ``Settings`` is one flat model on purpose, so every setting is
one flag, one variable and one file key, listed in one place (and in the README's table).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from coordinator.errors import ConfigError
from coordinator.retry import RetryPolicy, RetryStrategy

ENV_PREFIX = "AGENTMESH_"
#: Field names whose values are secret by default (``redact_fields``): a name matches
#: when its letters and digits, lowercased, end with one of these.
DEFAULT_REDACT_FIELDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "credentials",
    "authorization",
    "cookie",
)


class NamespaceQuota(BaseModel):
    """What one namespace may hold at once (0: no quota). Over it, the call that would
    go past it is refused with RESOURCE_EXHAUSTED naming the quota; nothing else of the
    namespace, and nothing of another, is held back."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    running_executions: int = Field(
        0, ge=0, description="unfinished (queued, running, paused) top-level executions"
    )
    queued_tasks: int = Field(0, ge=0, description="tasks queued for an agent")
    events_per_second: float = Field(
        0.0, ge=0, description="TriggerEvent calls per second (bursts of up to one second's)"
    )
    tasks_per_second: float = Field(
        0.0, ge=0, description="tasks submitted through the API per second (bursts as above)"
    )


class Settings(BaseModel):
    """Every setting of a coordinator, validated (frozen). Built by ``load_settings`` from
    defaults, a TOML/YAML/JSON file, ``AGENTMESH_*`` environment variables and flags, in that
    order; an invalid value raises ``ConfigError`` naming the setting and its source."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    listen: str = Field("127.0.0.1:50051", description="host:port the gRPC server binds")
    tls_cert: str = Field(
        "",
        description="PEM certificate (chain) the gRPC listener serves; enables TLS (with tls_key)",
    )
    tls_key: str = Field("", description="PEM private key of tls_cert")
    tls_client_ca: str = Field(
        "", description="PEM CA bundle clients must present a certificate from (mutual TLS)"
    )
    # Authentication and authorization (docs/security.md): on when a tokens file or a JWKS
    # is configured; then every call but health (and reflection, if open) needs a principal.
    auth_tokens_file: str = Field(
        "",
        description="YAML file of principals (hashed bearer tokens, certificate identities), "
        "re-read when it changes; enables auth",
    )
    auth_policy_file: str = Field(
        "", description="YAML file of roles and their permissions (default: the built-in roles)"
    )
    auth_jwks_file: str = Field(
        "", description="JSON Web Key Set file that signs accepted JWTs; enables auth"
    )
    auth_jwks_url: str = Field(
        "", description="URL of the issuer's JSON Web Key Set (fetched, cached); enables auth"
    )
    auth_jwt_issuer: str = Field("", description="the `iss` accepted JWTs must carry (if set)")
    auth_jwt_audience: str = Field("", description="the `aud` accepted JWTs must carry")
    auth_open_reflection: bool = Field(
        True, description="serve gRPC reflection without credentials (grpcurl's discovery)"
    )
    audit_log: str = Field(
        "",
        description="file every write and refusal is appended to as JSON lines "
        "(always also logged as agentmesh.audit)",
    )
    probe_listen: str = Field(
        "",
        description="host:port of a second, plaintext listener serving only "
        "grpc.health.v1.Health, for probes that cannot do TLS ('': off)",
    )

    http_listen: str = Field(
        "127.0.0.1:8080",
        description="host:port of the HTTP listener (the dashboard, the API over Connect "
        "and SSE, /metrics, /healthz, /readyz); TLS as the gRPC listener's ('': off)",
    )
    http_cors_origins: list[str] = Field(
        default_factory=list,
        description="origins (https://ops.example.com) whose pages may call the HTTP API "
        "(CORS); '*': any; empty: the dashboard's own origin only",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text for people, json for one JSON object per line"
    )
    event_buffer: int = Field(
        10_000, ge=100, description="live events (not in the store) kept for resuming streams"
    )
    output_retention_bytes: int = Field(
        16 * 2**20,
        ge=0,
        description="characters of streamed task output (task.output) kept for "
        "subscribers that resume; older chunks age out first",
    )
    subscriber_buffer: int = Field(
        2_000,
        ge=10,
        description="events one subscriber may fall behind before its stream is ended "
        "(RESOURCE_EXHAUSTED; it resumes from the store)",
    )
    max_subscribers: int = Field(1_000, ge=1, description="open event subscriptions at once")

    @field_validator("probe_listen", "http_listen")
    @classmethod
    def _check_probe_listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if v and (not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535):
            raise ValueError(f"expected host:port (or '' for none), got {v!r}")
        return v

    coordinator_id: str = Field("", description="name of this replica; defaults to host:pid")
    # The seed's OrchestratorAgentConfig options.
    agent_registry: str = Field(
        "", description="the seed's name for etcd endpoints; same as etcd_endpoints"
    )
    workflow_dir: str = Field("", description="directory of workflow definitions loaded at start")
    state_persistence: Literal["memory", "file", "database", "sqlite", "etcd"] = Field(
        "database",
        description="memory, the embedded SQLite database file (file/database/sqlite), "
        "or etcd (cluster mode: replicas elect a leader)",
    )
    store_path: str = Field("agentmesh.db", description="SQLite database file")
    # Cluster mode (state_persistence: etcd).
    etcd_endpoints: list[str] = Field(
        default_factory=list, description="etcd host:port endpoints (comma-separated in env/flags)"
    )
    etcd_prefix: str = Field("/agentmesh", description="key prefix of this mesh's state in etcd")
    lease_ttl_s: int = Field(10, ge=2, le=300, description="replica session lease TTL (seconds)")
    advertise_address: str = Field(
        "", description="host:port other replicas, agents and clients reach this replica at"
    )
    etcd_ca_cert: str = Field("", description="CA bundle to verify etcd (enables TLS)")
    etcd_cert: str = Field("", description="client certificate for etcd (with etcd_key)")
    etcd_key: str = Field("", description="client private key for etcd (with etcd_cert)")
    etcd_user: str = Field("", description="etcd user (with etcd_password)")
    etcd_password: str = Field("", description="etcd password")
    etcd_timeout_s: float = Field(5.0, gt=0, description="bound on each etcd request")
    concurrency_limit: int = Field(10, ge=1, description="running workflow executions")
    max_queued_executions: int = Field(
        10_000,
        ge=0,
        description="executions waiting for a concurrencyLimit slot; StartWorkflow beyond "
        "it is refused with RESOURCE_EXHAUSTED",
    )
    default_timeout_ms: int = Field(300_000, ge=1, description="task timeout when none is given")
    retry_strategy: RetryStrategy = RetryStrategy.EXPONENTIAL
    max_retries: int = Field(3, ge=0)
    retry_interval_ms: int = Field(1000, ge=0)
    retry_backoff_rate: float = Field(2.0, ge=1.0)
    retry_max_interval_ms: int = Field(30_000, ge=0)
    retry_jitter: float = Field(0.2, ge=0.0, le=1.0)
    error_handling_level: Literal["minimal", "standard", "aggressive"] = Field(
        "standard", description="minimal: no automatic retries; aggressive: retry every error"
    )
    monitoring_enabled: bool = Field(
        True, description="keep workflow and system metrics (off: the Metrics service refuses)"
    )
    metrics_interval: int = Field(
        10_000,
        ge=100,
        description="ms between samples of resource use (CPU over the interval, memory, "
        "store size) and of event-loop lag",
    )
    otlp_endpoint: str = Field(
        "",
        description="send OpenTelemetry traces over OTLP/gRPC to this collector "
        "(http://host:4317 plaintext, https://... TLS; needs agentmesh[otlp]); '' : no traces",
    )
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    # Mesh mechanics.
    heartbeat_interval_ms: int = Field(5_000, ge=50)
    heartbeat_timeout_ms: int = Field(15_000, ge=100)
    max_redeliveries: int = Field(5, ge=0, description="re-dispatches after agent loss")
    max_pending_tasks: int = Field(100_000, ge=1)
    # Per-namespace quotas: the quota_* fields hold for every namespace, namespace_quotas
    # replaces them for the namespaces it names (fields it leaves out: the quota_* ones).
    quota_running_executions: int = Field(
        0, ge=0, description="per namespace: unfinished top-level executions (0: no quota)"
    )
    quota_queued_tasks: int = Field(
        0, ge=0, description="per namespace: tasks queued for an agent (0: no quota)"
    )
    quota_events_per_second: float = Field(
        0.0, ge=0, description="per namespace: TriggerEvent calls per second (0: no quota)"
    )
    quota_tasks_per_second: float = Field(
        0.0, ge=0, description="per namespace: API task submissions per second (0: no quota)"
    )
    quota_wait_ms: int = Field(
        1000,
        ge=0,
        description="AssignTask/BulkAssignTasks at a namespace's queued_tasks quota wait up "
        "to this long for room before RESOURCE_EXHAUSTED (backpressure; 0: refuse at once)",
    )
    namespace_quotas: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="namespace -> {runningExecutions, queuedTasks, eventsPerSecond, "
        "tasksPerSecond}, over "
        "the quota_* defaults (config file, or JSON in the environment)",
    )
    # Secrets: where they are looked up by name, and what is redacted.
    secrets_env_prefix: str = Field(
        "AGENTMESH_SECRET_", description="secret NAME is the variable <prefix>NAME ('' : off)"
    )
    secrets_dir: str = Field(
        "", description="directory of one file per secret (a Kubernetes secret volume)"
    )
    secrets_file: str = Field("", description="YAML or JSON file mapping secret names to values")
    history_key_secret: str = Field(
        "history-key",
        description="the secret holding the Fernet key that encrypts secret values in the "
        "history; without it they are stored as [redacted]",
    )
    # Webhooks (attempt timeout, backoff, deliveries in flight), the inbound events' secret.
    # An agent whose last `window` results hold `failure_rate` failures (at least half a
    # window of them) is out of routing (status error) for the cool-down, then probed.
    capability_limits: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="capability -> {concurrency, perSecond, burst}: limits on every workflow "
        "task of that capability, per namespace (config file, or JSON in the environment)",
    )
    priority_aging_ms: int = Field(10_000, ge=0, description="queued this long = +1 priority")
    agent_breaker_window: int = Field(10, ge=0, le=1000, description="0: no breaker")
    agent_breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    agent_breaker_cooldown_ms: int = Field(30_000, ge=1)
    webhook_timeout_ms: int = Field(10_000, ge=1)
    webhook_backoff_ms: int = Field(1_000, ge=1, description="doubles per attempt")
    webhook_max_backoff_ms: int = Field(300_000, ge=1)
    webhook_concurrency: int = Field(16, ge=1, le=1024)
    inbound_events_secret: str = Field(
        "inbound-events",
        description="the secret signing POST /v1/events/{event} for the default namespace; "
        "namespace N uses the secret '<this>.N' ('' : the endpoint is off)",
    )
    redact_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REDACT_FIELDS),
        description="field names (case and '_'/'-' ignored, matched as suffixes) whose "
        "values are secret",
    )
    task_retention: int = Field(100_000, ge=1, description="finished tasks kept for queries")
    offline_agent_retention_s: float = Field(600.0, ge=0)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_concurrent_rpcs: int = Field(10_000, ge=1)
    shutdown_grace_s: float = Field(20.0, ge=0)
    readiness_drain_s: float = Field(0.0, ge=0, description="wait after NOT_SERVING")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, got {v!r}")
        return v

    @field_validator("redact_fields", "http_cors_origins", mode="before")
    @classmethod
    def _split_fields(cls, v: Any) -> Any:
        if isinstance(v, str):  # from the environment or a flag: comma-separated
            return [f.strip() for f in v.split(",") if f.strip()]
        return v

    @field_validator("etcd_endpoints", mode="before")
    @classmethod
    def _split_endpoints(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [e.strip() for e in v.split(",") if e.strip()]
        return v

    @field_validator("etcd_endpoints")
    @classmethod
    def _check_endpoints(cls, v: list[str]) -> list[str]:
        for e in v:
            host, sep, port = e.removeprefix("http://").rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {e!r}")
        return [e.removeprefix("http://") for e in v]

    @field_validator("etcd_prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if not v.startswith("/") or v.rstrip("/") == "":
            raise ValueError(f"expected an absolute key prefix like /agentmesh, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        return self

    @model_validator(mode="after")
    def _check_auth(self) -> Settings:
        jwt = bool(self.auth_jwks_file or self.auth_jwks_url)
        if self.auth_jwks_file and self.auth_jwks_url:
            raise ValueError("auth_jwks_file and auth_jwks_url: give one, not both")
        if jwt and not self.auth_jwt_audience:
            raise ValueError("auth_jwt_audience: verifying JWTs needs the audience they carry")
        if self.auth_jwks_url and not self.auth_jwks_url.startswith(("https://", "http://")):
            raise ValueError(f"auth_jwks_url: expected an http(s) URL, got {self.auth_jwks_url!r}")
        if self.auth_policy_file and not self.auth_enabled:
            raise ValueError(
                "auth_policy_file: has no effect without auth_tokens_file or auth_jwks_file/url"
            )
        return self

    @field_validator("namespace_quotas", "capability_limits", mode="before")
    @classmethod
    def _parse_quotas(cls, v: Any) -> Any:
        if isinstance(v, str):  # from the environment
            try:
                return json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"expected a JSON object, got {v[:80]!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _check_quotas(self) -> Settings:
        for namespace, fields in self.namespace_quotas.items():
            try:
                NamespaceQuota.model_validate(fields)
            except ValidationError as e:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
                )
                raise ValueError(f"namespace_quotas.{namespace}: {problems}") from None
        for capability, limits in self.capability_limits.items():
            unknown = set(limits) - {"concurrency", "perSecond", "burst"}
            if unknown or not all(v > 0 for v in limits.values()):
                raise ValueError(
                    f"capability_limits.{capability}: expected positive concurrency, "
                    f"perSecond and burst; got {limits}"
                )
        return self

    def quota(self, namespace: str) -> NamespaceQuota:
        """The quota of ``namespace``: its ``namespace_quotas`` entry over the quota_* ones."""
        base = NamespaceQuota(
            running_executions=self.quota_running_executions,
            queued_tasks=self.quota_queued_tasks,
            events_per_second=self.quota_events_per_second,
            tasks_per_second=self.quota_tasks_per_second,
        )
        given = self.namespace_quotas.get(namespace)
        if not given:
            return base
        over = NamespaceQuota.model_validate(given)
        return base.model_copy(update={k: getattr(over, k) for k in over.model_fields_set})

    @property
    def auth_enabled(self) -> bool:
        """Whether calls need a principal (a tokens file or a JWKS is configured)."""
        return bool(self.auth_tokens_file or self.auth_jwks_file or self.auth_jwks_url)

    @model_validator(mode="after")
    def _check_cluster(self) -> Settings:
        if self.state_persistence != "etcd":
            return self
        if not self.endpoints:
            raise ValueError(
                "etcd_endpoints: state_persistence etcd needs at least one etcd endpoint"
            )
        if bool(self.etcd_cert) != bool(self.etcd_key):
            raise ValueError("etcd_cert and etcd_key go together")
        if bool(self.etcd_user) != bool(self.etcd_password):
            raise ValueError("etcd_user and etcd_password go together")
        if self.advertise_address:
            host, sep, port = self.advertise_address.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(
                    f"advertise_address: expected host:port, got {self.advertise_address!r}"
                )
        return self

    @property
    def endpoints(self) -> list[str]:
        """etcd endpoints, from ``etcd_endpoints`` or the seed's ``agent_registry``."""
        if self.etcd_endpoints:
            return list(self.etcd_endpoints)
        return [
            e.strip().removeprefix("http://") for e in self.agent_registry.split(",") if e.strip()
        ]

    @property
    def clustered(self) -> bool:
        """Whether this coordinator runs as a cluster replica (``state_persistence: etcd``)."""
        return self.state_persistence == "etcd"

    @property
    def store_kind(self) -> str:
        """``memory``, ``sqlite`` or ``etcd``: the store the persistence setting selects."""
        if self.state_persistence in ("memory", "etcd"):
            return self.state_persistence
        return "sqlite"

    @property
    def retry_policy(self) -> RetryPolicy:
        """The coordinator-wide retry policy for tasks (and steps without their own); none
        at ``error_handling_level: minimal``."""
        return RetryPolicy(
            strategy=self.retry_strategy,
            max_retries=0 if self.error_handling_level == "minimal" else self.max_retries,
            interval_ms=self.retry_interval_ms,
            backoff_rate=self.retry_backoff_rate,
            max_interval_ms=self.retry_max_interval_ms,
            jitter=self.retry_jitter,
        )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"config file {path} is not valid {path.suffix[1:] or 'json'}: {e}"
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    # Allow a [coordinator] table / key so one file can configure several parts.
    inner = data.get("coordinator")
    return dict(inner) if isinstance(inner, dict) else data


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            out[name] = raw
    return out


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Map camelCase or snake_case keys to field names, keeping unknown keys to reject."""
    by_alias = {to_camel(n): n for n in Settings.model_fields}
    return {by_alias.get(k, k.replace("-", "_")): v for k, v in data.items()}


def load_settings(
    file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from every source, later sources winning.

    Raises ConfigError with the offending setting named.
    """
    merged: dict[str, Any] = {}
    if file:
        merged.update(_normalise(_read_file(Path(file))))
    merged.update(_from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(merged)
    except ValidationError as e:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in e.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    where = ".".join(str(p) for p in loc)
    # Cross-field checks have no location: their message names the settings itself.
    return f"{where}: {msg}" if where else msg
