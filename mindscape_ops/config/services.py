"""The services a platform can run, as they appear under `services:` in platform.yaml.

A service listed in the file is enabled (even as a bare `postgres:` line) unless it says
`enabled: false`; a service not listed does not exist, as in a compose file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, model_validator

from mindscape_ops.config.types import Duration, Identifier, Name, Size, Text, check_single_line

_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:\d{1,5}$")
_URL_RE = re.compile(r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$")
_HTTP_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_SETTING_RE = re.compile(r"^[a-z][a-z0-9_.]*$")
_IPV4_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _check(pattern: re.Pattern[str], what: str, example: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what} (e.g. {example})")
        return value

    return AfterValidator(check)


def _check_bind(value: str) -> str:
    match = _IPV4_RE.match(value)
    if not match or any(int(part) > 255 for part in match.groups()):
        raise ValueError(
            f"{value!r} is not an IPv4 address; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        )
    return value


ImageRef = Annotated[str, _check(_IMAGE_RE, "an image reference", "postgres:16 or registry.local/team/api:1.2")]
HostPort = Annotated[str, _check(_HOSTPORT_RE, "a host:port address", "api:8000 or host.docker.internal:8000")]
HttpUrl = Annotated[str, _check(_URL_RE, "an http(s) URL without query or spaces", "http://host.docker.internal:8000")]
HttpPath = Annotated[str, _check(_HTTP_PATH_RE, "an absolute URL path", "/metrics")]
BindAddress = Annotated[str, AfterValidator(_check_bind)]


def parse_port(value: Any) -> int | str:
    """A host port: 1-65535, or `auto` (a free port is picked once and kept in state)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port; use a number from 1 to 65535, or auto")
    return value


PortSpec = Annotated[int | str, PlainValidator(parse_port)]


class Health(Strict):
    """How long `up` waits for a service to be really ready, and how often it looks."""

    timeout: Duration = Duration("120s")
    interval: Duration = Duration("100ms")
    start_period: Duration = Duration("0s")


class ScrapeTarget(Strict):
    """An application Prometheus scrapes (and alerts on: 5xx rate, latency)."""

    name: Name
    targets: list[HostPort] = Field(min_length=1)
    metrics_path: HttpPath = "/metrics"
    scheme: Literal["http", "https"] = "http"
    scrape_interval: Duration | None = None


class Service(Strict):
    enabled: bool = True
    image: ImageRef
    port: PortSpec
    bind: BindAddress = "127.0.0.1"
    health: Health = Health()


class Postgres(Service):
    image: ImageRef = "postgres:16"
    port: PortSpec = 5432
    database: Identifier = "app"
    user: Identifier = "app"
    # Passed as `postgres -c key=value`; values are validated to stay one token.
    settings: dict[
        Annotated[str, _check(_SETTING_RE, "a postgres setting name", "max_connections")], str | int | float | bool
    ] = {}

    @model_validator(mode="after")
    def _settings_are_single_tokens(self) -> Postgres:
        for key, value in self.settings.items():
            check_single_line(str(value))
            if isinstance(value, str) and ("'" in value or '"' in value):
                raise ValueError(f"settings.{key}: quotes are not allowed in a setting value")
        return self


class Redis(Service):
    image: ImageRef = "redis:7"
    port: PortSpec = 6379
    maxmemory: Size = Size("256mb")
    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = "allkeys-lru"
    appendonly: bool = True


class Prometheus(Service):
    image: ImageRef = "prom/prometheus:v2.53.0"
    port: PortSpec = 9090
    scrape_interval: Duration = Duration("15s")
    evaluation_interval: Duration = Duration("15s")
    retention: Duration = Duration("15d")
    targets: list[ScrapeTarget] = []


class Alertmanager(Service):
    image: ImageRef = "prom/alertmanager:v0.27.0"
    port: PortSpec = 9093


class Grafana(Service):
    image: ImageRef = "grafana/grafana:11.1.0"
    port: PortSpec = 3000
    admin_user: Identifier = "admin"


class Gateway(Service):
    """nginx in front of the application: security headers, CORS, rate limits, audit log."""

    image: ImageRef = "nginx:1.27"
    port: PortSpec = 8080
    upstream: HttpUrl = "http://host.docker.internal:8000"
    server_name: Annotated[str, _check(re.compile(r"^[A-Za-z0-9_.*-]+$"), "a server name", "api.example.com")] = "_"


class Pgbouncer(Service):
    image: ImageRef = "edoburu/pgbouncer:v1.23.1-p3"
    port: PortSpec = 6432
    pool_mode: Literal["session", "transaction", "statement"] = "transaction"
    default_pool_size: int = Field(20, ge=1, le=10000)
    min_pool_size: int = Field(0, ge=0, le=10000)
    reserve_pool_size: int = Field(0, ge=0, le=10000)
    max_client_conn: int = Field(200, ge=1, le=100000)


class PostgresExporter(Service):
    image: ImageRef = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
    port: PortSpec = 9187
    via_pgbouncer: bool = False


class RedisExporter(Service):
    image: ImageRef = "oliver006/redis_exporter:v1.62.0"
    port: PortSpec = 9121


# The order services start in; each depends only on services before it.
SERVICE_ORDER = (
    "postgres",
    "redis",
    "alertmanager",
    "prometheus",
    "grafana",
    "gateway",
    "pgbouncer",
    "postgres_exporter",
    "redis_exporter",
)


class Services(Strict):
    postgres: Postgres | None = None
    redis: Redis | None = None
    prometheus: Prometheus | None = None
    alertmanager: Alertmanager | None = None
    grafana: Grafana | None = None
    gateway: Gateway | None = None
    pgbouncer: Pgbouncer | None = None
    postgres_exporter: PostgresExporter | None = None
    redis_exporter: RedisExporter | None = None

    @model_validator(mode="before")
    @classmethod
    def _listed_means_enabled(cls, data: Any) -> Any:
        # `postgres:` with nothing after it is YAML null: the user listed it, so it exists.
        if isinstance(data, dict):
            return {key: ({} if value is None else value) for key, value in data.items()}
        return data

    def enabled(self) -> dict[str, Service]:
        """Enabled services, in start order."""
        found = {name: getattr(self, name) for name in SERVICE_ORDER}
        return {name: svc for name, svc in found.items() if svc is not None and svc.enabled}


# What each service needs running before it (used for start order and validation).
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "grafana": ("prometheus",),
    "pgbouncer": ("postgres",),
    "postgres_exporter": ("postgres",),
    "redis_exporter": ("redis",),
}

__all__ = [
    "DEPENDS_ON",
    "SERVICE_ORDER",
    "Alertmanager",
    "Gateway",
    "Grafana",
    "Health",
    "HostPort",
    "HttpUrl",
    "Pgbouncer",
    "Postgres",
    "PostgresExporter",
    "Prometheus",
    "Redis",
    "RedisExporter",
    "ScrapeTarget",
    "Service",
    "Services",
    "Strict",
    "Text",
]
