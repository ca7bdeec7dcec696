"""platform.yaml, version 1, as pydantic models. Every key has a default or is required;
unknown keys are errors. Cross-field rules that need the whole platform live in `rules.py`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from mindscape_ops.config.base import HostPort, HttpUrl, ScrapeTarget, Strict
from mindscape_ops.config.services import Services
from mindscape_ops.config.types import Cron, Duration, Identifier, Name, RelativePath, Size, Text
from mindscape_ops.services.registry import SERVICES

# The services whose volume holds data worth backing up.
DataService = Literal[tuple(service.name for service in SERVICES if service.holds_data)]  # type: ignore[valid-type]

_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_METHOD_RE = re.compile(r"^[A-Z]{1,16}$")
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
_PERMISSION_RE = re.compile(r"^(\*|[a-z][a-z0-9_-]*(:[a-z0-9_*-]+)*)$")
_ALERT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def _matching(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


Origin = Annotated[str, _matching(_ORIGIN_RE, "an origin like https://app.example.com (scheme, host, optional port)")]
HeaderName = Annotated[str, _matching(_HEADER_RE, "an HTTP header name")]
Method = Annotated[str, _matching(_METHOD_RE, "an HTTP method in capitals (GET, POST, ...)")]
EnvName = Annotated[str, _matching(_ENV_RE, "an environment variable name (A-Z, 0-9, _)")]
Permission = Annotated[str, _matching(_PERMISSION_RE, "a permission like orders:read, orders:* or *")]
AlertName = Annotated[str, _matching(_ALERT_RE, "an alert name (letters, digits, _)")]
Email = Annotated[str, _matching(_EMAIL_RE, "an e-mail address")]


# -- security ---------------------------------------------------------------------------


class Hsts(Strict):
    enabled: bool = True
    max_age: Duration = Duration("365d")
    include_subdomains: bool = True
    preload: bool = False


class Headers(Strict):
    """Security headers the gateway adds to every response."""

    hsts: Hsts = Hsts()
    content_security_policy: Text = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
    frame_options: Literal["DENY", "SAMEORIGIN"] = "DENY"
    referrer_policy: Literal[
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    ] = "strict-origin-when-cross-origin"
    permissions_policy: Text = "camera=(), microphone=(), geolocation=(), payment=()"
    cross_origin_opener_policy: Literal["same-origin", "same-origin-allow-popups", "unsafe-none"] = "same-origin"
    cross_origin_resource_policy: Literal["same-origin", "same-site", "cross-origin"] = "same-origin"


class Cors(Strict):
    """Only these origins get CORS headers; any other origin gets none (no wildcard)."""

    allowed_origins: list[Origin] = []
    allowed_methods: list[Method] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    allowed_headers: list[HeaderName] = ["Authorization", "Content-Type", "X-Request-ID"]
    expose_headers: list[HeaderName] = ["X-Request-ID"]
    allow_credentials: bool = True
    max_age: Duration = Duration("10m")


class RateLimit(Strict):
    """Per-client (by address) request rate at the gateway; over it, `status` is returned."""

    enabled: bool = True
    requests_per_second: int = Field(10, ge=1, le=100000)
    burst: int = Field(20, ge=0, le=100000)
    status: int = Field(429, ge=400, le=599)


class Limits(Strict):
    max_body_size: Size = Size("10mb")
    client_timeout: Duration = Duration("30s")
    upstream_timeout: Duration = Duration("60s")


class AuditLog(Strict):
    """The gateway writes one JSON line per request (who, what, outcome) for auditing."""

    enabled: bool = True


class Jwt(Strict):
    issuer: HttpUrl = "http://localhost:8000"
    audience: Name = "api"
    algorithms: list[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "HS256", "HS512"]] = ["RS256"]
    access_token_ttl: Duration = Duration("15m")
    refresh_token_ttl: Duration = Duration("7d")
    leeway: Duration = Duration("30s")


class Role(Strict):
    permissions: list[Permission] = []
    mfa_required: bool = False


class Mfa(Strict):
    methods: list[Literal["totp", "webauthn", "sms"]] = ["totp", "webauthn"]


class Sessions(Strict):
    idle_timeout: Duration = Duration("30m")
    absolute_timeout: Duration = Duration("12h")
    max_per_user: int = Field(5, ge=1, le=1000)


def _default_roles() -> dict[str, Role]:
    return {
        "admin": Role(permissions=["*"], mfa_required=True),
        "member": Role(permissions=["profile:read", "profile:write"]),
        "viewer": Role(permissions=["profile:read"]),
    }


class Auth(Strict):
    """The application's authentication policy, rendered to deploy/security/policy.json."""

    jwt: Jwt = Jwt()
    roles: dict[Name, Role] = Field(default_factory=_default_roles)
    mfa: Mfa = Mfa()
    sessions: Sessions = Sessions()


class Security(Strict):
    headers: Headers = Headers()
    cors: Cors = Cors()
    rate_limit: RateLimit = RateLimit()
    limits: Limits = Limits()
    audit_log: AuditLog = AuditLog()
    auth: Auth = Auth()


# -- monitoring -------------------------------------------------------------------------


class Thresholds(Strict):
    """Where the built-in alerts fire."""

    postgres_connections_ratio: float = Field(0.8, gt=0, le=1)
    redis_memory_ratio: float = Field(0.9, gt=0, le=1)
    http_error_ratio: float = Field(0.05, gt=0, le=1)
    http_latency_p95: Duration = Duration("500ms")
    disk_free_ratio: float = Field(0.1, gt=0, lt=1)


class AlertRule(Strict):
    alert: AlertName
    expr: Text
    for_: Duration = Field(Duration("5m"), alias="for")
    severity: Literal["critical", "warning", "info"] = "warning"
    summary: Text
    description: Text = ""


class Receiver(Strict):
    """Where alerts go. Secrets (webhook URLs, routing keys, SMTP passwords) are never written
    here: `secret_env` names the environment variable that holds one."""

    name: Name
    kind: Literal["webhook", "slack", "email", "pagerduty"] = "webhook"
    secret_env: EnvName | None = None
    url: HttpUrl | None = None
    channel: Annotated[str, _matching(re.compile(r"^#?[a-z0-9._-]{1,80}$"), "a Slack channel")] | None = None
    to: Email | None = None
    severities: list[Literal["critical", "warning", "info"]] = []


class Route(Strict):
    group_by: list[Annotated[str, _matching(re.compile(r"^[a-z_][a-z0-9_]*$"), "a label name")]] = [
        "alertname",
        "service",
    ]
    group_wait: Duration = Duration("30s")
    group_interval: Duration = Duration("5m")
    repeat_interval: Duration = Duration("4h")


class Monitoring(Strict):
    targets: list[ScrapeTarget] = []
    thresholds: Thresholds = Thresholds()
    rules: list[AlertRule] = []
    receivers: list[Receiver] = []
    route: Route = Route()


# -- ci, database, backups ----------------------------------------------------------------


class Ci(Strict):
    provider: Literal["github"] = "github"
    python_version: Annotated[str, _matching(re.compile(r"^3\.\d{1,2}$"), "a Python version like 3.12")] = "3.12"
    branches: list[Annotated[str, _matching(re.compile(r"^[A-Za-z0-9._/*-]{1,100}$"), "a branch name")]] = ["main"]
    coverage_threshold: int = Field(90, ge=0, le=100)
    source_dir: RelativePath = "src"
    tests_dir: RelativePath = "tests"
    lint: bool = True
    security_scan: bool = True


class Database(Strict):
    migrations_dir: RelativePath = "migrations"
    migrate_on_up: bool = False
    lock_timeout: Duration = Duration("60s")
    # Set in production: the URL of a managed database, read from this variable when set.
    url_env: EnvName = "DATABASE_URL"


class Retention(Strict):
    keep_last: int = Field(7, ge=1, le=10000)
    max_age: Duration | None = Duration("30d")


class LocalStore(Strict):
    dir: RelativePath = "backups"


class S3Store(Strict):
    """Credentials come from the usual AWS environment variables, never from this file."""

    bucket: Annotated[str, _matching(re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "an S3 bucket name")]
    prefix: Annotated[str, _matching(re.compile(r"^[A-Za-z0-9._/-]{0,200}$"), "a key prefix")] = "mindscape/"
    region: Annotated[str, _matching(re.compile(r"^[a-z0-9-]{1,40}$"), "a region like eu-west-1")] = "us-east-1"
    endpoint_url: HttpUrl | None = None


class Encryption(Strict):
    """AES-256-GCM at rest. The key (32 bytes: 64 hex characters, or base64) comes from an
    environment variable or a file; never from this file."""

    key_env: EnvName | None = None
    key_file: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_source(self) -> Encryption:
        if (self.key_env is None) == (self.key_file is None):
            raise ValueError("set exactly one of key_env (a variable's name) and key_file (a path)")
        return self


class Backups(Strict):
    enabled: bool = True
    schedule: Cron = "0 3 * * *"
    # Default: every enabled service that holds data (postgres, redis).
    services: list[DataService] | None = None
    retention: Retention = Retention()
    local: LocalStore = LocalStore()
    s3: S3Store | None = None
    encryption: Encryption | None = None


class Paths(Strict):
    """Where generated files go, relative to the directory holding platform.yaml."""

    workflows: RelativePath = ".github/workflows"
    deploy: RelativePath = "deploy"
    runbooks: RelativePath = "docs/runbooks"


class Platform(Strict):
    version: Literal[1]
    project: Name
    environment: Literal["development", "staging", "production"] = "development"
    services: Services = Services()
    security: Security = Security()
    monitoring: Monitoring = Monitoring()
    ci: Ci = Ci()
    database: Database = Database()
    backups: Backups = Backups()
    paths: Paths = Paths()

    def container_name(self, service: str) -> str:
        return f"{self.project}-{service}"

    def volume_name(self, service: str) -> str:
        return f"{self.project}-{service}-data"

    @property
    def network_name(self) -> str:
        return self.project

    @property
    def backup_services(self) -> list[str]:
        chosen = self.backups.services
        if chosen is None:
            enabled = self.services.enabled()
            return [service.name for service in SERVICES if service.holds_data and service.name in enabled]
        return list(chosen)

    @property
    def scrape_targets(self) -> list[ScrapeTarget]:
        """Application targets from `monitoring.targets` and `services.prometheus.targets`."""
        own = self.services.prometheus.targets if self.services.prometheus else []
        return [*self.monitoring.targets, *own]


__all__ = [
    "Auth",
    "Backups",
    "Ci",
    "Database",
    "HostPort",
    "Identifier",
    "Monitoring",
    "Platform",
    "S3Store",
    "Security",
]
