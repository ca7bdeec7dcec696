"""platform.yaml, version 1, as pydantic models. Every key has a default or is required;
unknown keys are errors. Cross-field rules that need the whole platform live in `rules.py`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from mindscape_ops.config.backups import Backups, S3Store
from mindscape_ops.config.ci import Ci
from mindscape_ops.config.kubernetes import Kubernetes
from mindscape_ops.config.monitoring import Monitoring
from mindscape_ops.config.security import Headers, RateLimit, Tls
from mindscape_ops.config.services import Services
from mindscape_ops.services.registry import SERVICES
from mindscape_ops.settings.base import HostPort, HttpUrl, ScrapeTarget, Strict
from mindscape_ops.settings.types import Duration, EnvName, Identifier, Name, RelativePath, Size
from mindscape_ops.settings.types import matching as _matching

_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_METHOD_RE = re.compile(r"^[A-Z]{1,16}$")
_PERMISSION_RE = re.compile(r"^(\*|[a-z][a-z0-9_-]*(:[a-z0-9_*-]+)*)$")


Origin = Annotated[str, _matching(_ORIGIN_RE, "an origin like https://app.example.com (scheme, host, optional port)")]
HeaderName = Annotated[str, _matching(_HEADER_RE, "an HTTP header name")]
Method = Annotated[str, _matching(_METHOD_RE, "an HTTP method in capitals (GET, POST, ...)")]
Permission = Annotated[str, _matching(_PERMISSION_RE, "a permission like orders:read, orders:* or *")]


# -- security ---------------------------------------------------------------------------


class Cors(Strict):
    """Only these origins get CORS headers; any other origin gets none (no wildcard)."""

    allowed_origins: list[Origin] = []
    allowed_methods: list[Method] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    allowed_headers: list[HeaderName] = ["Authorization", "Content-Type", "X-Request-ID"]
    expose_headers: list[HeaderName] = ["X-Request-ID"]
    allow_credentials: bool = True
    max_age: Duration = Duration("10m")


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
    """Second factors. With the identity service: totp and lookup_secret (recovery codes) work
    through the API; webauthn needs a browser; sms is not offered by the identity server."""

    methods: list[Literal["totp", "lookup_secret", "webauthn", "sms"]] = ["totp", "webauthn"]


class Password(Strict):
    """What the identity service accepts as a password."""

    min_length: int = Field(12, ge=8, le=128)
    # refuse a password too close to the user's e-mail address
    identifier_similarity_check: bool = True


class Sessions(Strict):
    idle_timeout: Duration = Duration("30m")
    absolute_timeout: Duration = Duration("12h")
    max_per_user: int = Field(5, ge=1, le=1000)


class LoginRateLimit(Strict):
    """Per-client (by address) rate of the identity service's self-service requests through the
    gateway (login, recovery, registration, verification, settings, logout): stricter than
    security.rate_limit, and applied even when that one is off. Over it, 429."""

    requests_per_minute: int = Field(10, ge=1, le=60000)
    burst: int = Field(5, ge=0, le=10000)


def _default_roles() -> dict[str, Role]:
    return {
        "admin": Role(permissions=["*"], mfa_required=True),
        "member": Role(permissions=["profile:read", "profile:write"]),
        "viewer": Role(permissions=["profile:read"]),
    }


class Auth(Strict):
    """The application's authentication policy: with the identity service, the identity server's
    configuration and the gateway's checks are made from it (and deploy/security/policy.json
    shows it to the application)."""

    jwt: Jwt = Jwt()
    roles: dict[Name, Role] = Field(default_factory=_default_roles)
    mfa: Mfa = Mfa()
    sessions: Sessions = Sessions()
    password: Password = Password()
    login_rate_limit: LoginRateLimit = LoginRateLimit()


class Security(Strict):
    tls: Tls = Tls()
    headers: Headers = Headers()
    cors: Cors = Cors()
    rate_limit: RateLimit = RateLimit()
    limits: Limits = Limits()
    audit_log: AuditLog = AuditLog()
    auth: Auth = Auth()


# -- ci, database, backups ----------------------------------------------------------------


class Database(Strict):
    migrations_dir: RelativePath = "migrations"
    migrate_on_up: bool = False
    lock_timeout: Duration = Duration("60s")
    # Set in production: the URL of a managed database, read from this variable when set.
    url_env: EnvName = "DATABASE_URL"


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
    kubernetes: Kubernetes | None = None  # set (even `kubernetes: {}`): deploy/kubernetes/ is rendered

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
        """Application targets from `monitoring.targets` and those a service's section adds
        (ServiceDef.app_targets: Prometheus' own `targets`)."""
        own = [target for service in SERVICES if service.app_targets for _, target in service.app_targets(self)]
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
