"""Settings from environment variables, validated once at start.

Every service has one settings class per concern, each a subclass of
:class:`SettingsBase` with its own ``env_prefix``. :func:`load` builds it and turns
pydantic's validation errors into one :class:`SettingsError` whose message names
each bad variable, so a misconfigured container fails fast with a readable line.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="SettingsBase")


class SettingsError(Exception):
    """Raised when one or more environment variables are invalid."""


class SettingsBase(BaseSettings):
    """Base class: environment variables only, unknown prefixed variables ignored."""

    model_config = SettingsConfigDict(env_prefix="CREATORMESH_", extra="ignore", frozen=True)

    #: Shown as the section title in the generated configuration table.
    title: ClassVar[str] = "settings"


class KitSettings(SettingsBase):
    """What every service process reads: ports, logging, Kafka, Redis and gRPC tuning."""

    title: ClassVar[str] = "Every service (kit)"

    environment: str = Field("local", description="Deployment environment name, added to every log line.")
    grpc_host: str = Field("[::]", description="Address the gRPC server binds to.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 picks a free port).")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port (0 disables the endpoint).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field("json", description="json for machines, text for people.")
    kafka_bootstrap: str = Field(
        "", description="Kafka bootstrap servers, host:port[,host:port]. Empty: the service runs without the bus."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (one pooled client per process).")
    grace_seconds: float = Field(
        20.0, gt=0, le=600, description="On SIGTERM: how long in-flight calls may take to finish."
    )
    drain_delay_seconds: float = Field(
        0.0,
        ge=0,
        le=120,
        description="On SIGTERM: seconds to keep serving while health says NOT_SERVING, so load balancers notice.",
    )
    max_message_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024, description="Max gRPC message size, both directions."
    )
    max_concurrent_rpcs: int = Field(0, ge=0, description="Calls beyond this get RESOURCE_EXHAUSTED (0: unlimited).")
    keepalive_time_ms: int = Field(30_000, ge=1000, description="HTTP/2 keepalive ping interval.")
    keepalive_timeout_ms: int = Field(10_000, ge=100, description="Keepalive ping ack timeout.")
    max_connection_age_ms: int = Field(
        300_000, ge=1000, description="Connections are closed after this age, so clients rebalance."
    )
    max_connection_age_grace_ms: int = Field(
        30_000, ge=0, description="Grace for calls on a connection closed for age."
    )
    client_deadline_seconds: float = Field(
        10.0, gt=0, le=3600, description="Default deadline of every outgoing gRPC call that sets none."
    )
    idempotency_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="How long consumers remember applied event ids."
    )
    consumer_group: str = Field(
        "", description="Kafka consumer group of the service's consumers (empty: the service's name)."
    )
    consumer_max_attempts: int = Field(
        3, ge=1, le=100, description="Handler attempts per event before it goes to <topic>.dlq."
    )
    consumer_retry_backoff_ms: int = Field(
        200, ge=0, le=60_000, description="First retry backoff; doubles per attempt."
    )


#: A directory of files named like the variables (CREATORMESH_REDIS_URL, ...), each holding one value: how
#: Kubernetes Secrets reach a service without putting them in its environment. Variables still win over files.
SECRETS_DIR_VARIABLE = "CREATORMESH_SECRETS_DIR"


def load(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment (and the secret files of ``$CREATORMESH_SECRETS_DIR``), raising
    :class:`SettingsError` naming bad variables."""
    secrets = os.environ.get(SECRETS_DIR_VARIABLE)
    try:
        if secrets:
            return cls(_secrets_dir=secrets, **overrides)
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            value = err.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict) and value is not None else ""
            lines.append(f"{prefix}{name}: {err['msg']}{shown}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def as_env(settings: SettingsBase) -> dict[str, str]:
    """``settings`` as the environment variables that :func:`load` reads back into equal settings: for a child
    process (e.g. a training job) that must see this process's configuration, overrides included."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:  # unset: the child falls back to the default too
            continue
        if isinstance(value, str):
            env[f"{prefix}{name.upper()}"] = value
        else:
            env[f"{prefix}{name.upper()}"] = json.dumps(value)
    return env


def markdown_table(classes: list[type[SettingsBase]]) -> str:
    """The configuration table for the README, generated from the settings classes."""
    out = ["| variable | default | description |", "|---|---|---|"]
    for cls in classes:
        out.append(f"| **{cls.title}** | | |")
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            default = field.default
            shown = "" if default in ("", None) else f"`{default}`"
            desc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{prefix}{name.upper()}` | {shown} | {desc} |")
    return "\n".join(out)
