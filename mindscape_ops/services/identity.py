"""The identity service: Ory Kratos (identities, password and second factors, sessions, the
session-to-JWT tokenizer). Its identities live in the platform's Postgres, in their own database
and role made by `up`; its configuration is rendered from `security.auth` (deploy/identity/);
its secrets (the DSN, the cookie secret) and the token signing keys are in .mindscape/identity/
(mode 0600: the container runs as the user who owns them). The gateway asks it who a request is
(services/gateway_routes.py). Beside it: the signing keys (identity_keys.py), its e-mails'
courier (identity_courier.py), its sessions' timing and what security.auth may not ask of it
(identity_settings.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from mindscape_ops.services.contract import Address, Credentials, HttpProbe, Inputs, NotReady, wait_until_ready
from mindscape_ops.services.definition import (
    Artifact,
    InitStep,
    KubeShape,
    Metrics,
    ServiceDef,
    UpContext,
    deploy,
)
from mindscape_ops.services.identity_alerts import alerts, dashboard
from mindscape_ops.services.identity_courier import courier, smtp_on_host, smtp_password, smtp_uri
from mindscape_ops.services.identity_gates import GATES
from mindscape_ops.services.identity_keys import (
    JWKS_FILE,
    PRIVATE,
    PUBLIC_JWKS_FILE,
    new_signing_key,
    pruned,
    public_jwks,
    read_keys,
    write_in_place,
    write_keys,
)
from mindscape_ops.services.identity_settings import SessionTiming, problems, session_timing
from mindscape_ops.services.postgres import connect
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import HttpUrl, ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Duration, Identifier

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

PUBLIC, ADMIN = 4433, 4434  # where Kratos listens in its container: public and admin APIs
SECRETS_FILE = "secrets.yml"  # in PRIVATE, beside the signing keys (services/identity_keys.py)
IN_CONTAINER = "/etc/kratos"
SECRETS = ("IDENTITY_DB_PASSWORD", "IDENTITY_COOKIE_SECRET")
SECOND_FACTORS = ("totp", "lookup_secret")  # what the API flows can enrol without a browser

FixedPort = Annotated[int, Field(ge=1, le=65535)]


class Identity(Service):
    """The identity server: its public API on `port` (login, logout, whoami), its admin API on
    `admin_port` (operators' commands), both on `bind`."""

    image: ImageRef = "oryd/kratos:v1.3.1"
    port: PortSpec = PUBLIC
    admin_port: FixedPort = ADMIN
    database: Identifier = "identity"  # its own database and role in the platform's Postgres
    registration: bool = False  # self-service sign-up; off: operators create users
    # how long the gateway may reuse the identity service's answer for a session (and the JWT
    # minted with it): a session it has let through may pass that long after a logout or a
    # revocation; 0s asks on every request (about 15-19 ms more per request here: bench/auth)
    session_cache: Duration = Duration("3s")
    # a login UI for browsers (Kratos' self-service UI), served through the gateway: its pages are
    # <ui_url>/login, /registration, /settings, /recovery, /verification, /error; set, a browser
    # without a session on a protected route is sent to its login page, and Kratos' public API is
    # at <its origin>/_mindscape/identity/ for browsers (README: "Plugging in a login UI")
    ui_url: HttpUrl | None = None

    session_cookie: ClassVar[str] = "mindscape_session"
    token_template: ClassVar[str] = "mindscape"  # the tokenizer template the gateway asks for
    admin_in_container: ClassVar[int] = ADMIN  # where the gateway extends a used session

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.bind == "0.0.0.0" else self.bind
        return f"http://{host}:{self.port if isinstance(self.port, int) else PUBLIC}/"

    def webauthn_rp(self, issuer: str) -> tuple[str, str]:
        """WebAuthn's relying party (id, origin): the login UI's host and origin, else jwt.issuer's
        (where the application is served)."""
        from urllib.parse import urlsplit

        parts = urlsplit(str(self.ui_url or issuer))
        return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"

    @property
    def ui_origin(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(str(self.ui_url or ""))
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def browser_url(self) -> str:
        """Where browsers reach its public API: through the gateway, beside the login UI."""
        return f"{self.ui_origin}/_mindscape/identity/" if self.ui_url else self.public_url

    def timing(self, sessions: Any) -> SessionTiming:
        """How security.auth.sessions is kept (the templates ask): see `session_timing`."""
        return session_timing(sessions.idle_timeout.seconds, sessions.absolute_timeout.seconds)


def inputs(platform: Platform) -> Inputs:
    """Pure: the variable or file monitoring.smtp's password comes from (it is in secrets.yml)."""
    smtp = platform.monitoring.smtp
    if smtp is None:
        return Inputs((), ())
    return Inputs(tuple(filter(None, [smtp.password_env])), tuple(filter(None, [smtp.password_file])))


def container(platform: Platform) -> Container:
    deploy_dir = f"{platform.paths.deploy}/identity"
    config = ("-c", f"{IN_CONTAINER}/kratos.yml", "-c", f"{IN_CONTAINER}/private/{SECRETS_FILE}")
    sends = courier(platform) != "queue"
    extra = (Mount(f"{deploy_dir}/courier.jsonnet", f"{IN_CONTAINER}/courier.jsonnet"),)
    return Container(
        container_port=PUBLIC,
        extra_ports={ADMIN: platform.services.identity.admin_port},
        # its courier in the same process: e-mails leave as soon as they are queued
        command=("serve", *config, *(("--watch-courier",) if sends else ())),
        # the owner of .mindscape/, so its 0600 files are readable and nobody else's are
        user=f"{os.getuid()}:{os.getgid()}",
        mounts=(
            Mount(f"{deploy_dir}/kratos.yml", f"{IN_CONTAINER}/kratos.yml"),
            Mount(f"{deploy_dir}/identity.schema.json", f"{IN_CONTAINER}/identity.schema.json"),
            Mount(f"{deploy_dir}/claims.jsonnet", f"{IN_CONTAINER}/claims.jsonnet"),
            Mount(f"{PRIVATE}/{SECRETS_FILE}", f"{IN_CONTAINER}/private/{SECRETS_FILE}"),
            Mount(f"{PRIVATE}/{JWKS_FILE}", f"{IN_CONTAINER}/private/{JWKS_FILE}"),
            *(extra if courier(platform) == "log_store" else ()),
        ),
        healthcheck=("CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{PUBLIC}/health/alive || exit 1"),
        # its courier's relay (monitoring.smtp) on this machine
        reach_host=smtp_on_host(platform),
        also_listens=(ADMIN,),
    )


def migrate_command() -> list[str]:
    return ["kratos", "migrate", "sql", "-e", "--yes", "-c", f"{IN_CONTAINER}/private/{SECRETS_FILE}"]


# -- files in .mindscape/identity/ (`prepare`, before any container starts) -------------------------


def dsn(platform: Platform, password: str) -> str:
    database = platform.services.identity.database
    return f"postgres://{database}:{password}@postgres:5432/{database}?sslmode=disable&max_conns=20"


def secrets_yaml(platform: Platform, secrets: Mapping[str, str], smtp_password: str | None = None) -> str:
    """Kratos' second configuration file: what must not be in the rendered one (with
    monitoring.smtp, the courier's connection URI: it holds the relay's password)."""
    values: dict[str, Any] = {
        "dsn": dsn(platform, secrets["IDENTITY_DB_PASSWORD"]),
        "secrets": {"cookie": [secrets["IDENTITY_COOKIE_SECRET"]]},
    }
    if courier(platform) == "smtp":
        values["courier"] = {"smtp": {"connection_uri": smtp_uri(platform, smtp_password)}}
    return json.dumps(values, indent=2) + "\n"  # JSON is YAML


def prepare(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """secrets.yml (0600) from secrets.env; the signing keys made once (0600), rotated-out keys
    dropped once the tokens they signed have expired, and their public half (0644: the gateway's
    workers serve it)."""
    import time

    from mindscape_ops.adapters.files import write_if_changed

    folder = project.root / PRIVATE
    warnings: list[str] = []
    password = None
    smtp = project.platform.monitoring.smtp
    if smtp is not None and (smtp.password_env or smtp.password_file):
        password, source = smtp_password(project)
        if not password:
            warnings.append(f"monitoring.smtp: {source} is not set or empty; the identity service's e-mails will fail")
    write_if_changed(folder / SECRETS_FILE, secrets_yaml(project.platform, secrets, password), mode=0o600)
    if not (folder / JWKS_FILE).is_file():
        write_keys(folder, {"keys": [new_signing_key()]}, {})
    before = read_keys(folder)
    after = pruned(*before, time.time())
    if after != before:
        write_keys(folder, *after)
    write_in_place(folder / PUBLIC_JWKS_FILE, json.dumps(public_jwks(after[0]), indent=2) + "\n")
    return warnings


# -- `up`: its database and role before it starts, its migrations once it answers -------------------


def database_statements(database: str) -> tuple[Any, Any, str]:
    """Pure: the role (made once, its password set on every `up`), then the database it owns."""
    from psycopg import sql

    role = sql.Identifier(database)
    create_role = sql.SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN CREATE ROLE {role} LOGIN; "
        "END IF; END $$"
    ).format(name=sql.Literal(database), role=role)
    # DDL takes no bound parameters: the password is quoted as a literal by psycopg
    return create_role, sql.SQL("ALTER ROLE {role} WITH LOGIN PASSWORD {password}"), database


def ensure_database(postgres: Address, creds: Credentials, database: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    create_role, set_password, name = database_statements(database)
    try:
        with connect(postgres, creds) as conn:
            conn.execute(create_role)
            conn.execute(set_password.format(role=sql.Identifier(name), password=sql.Literal(password)))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
    except psycopg.Error as exc:
        raise NotReady(f"postgres: {str(exc).strip() or type(exc).__name__}") from None


def before_start(up: UpContext) -> None:
    """Its database and role, then its schema migrations (`kratos migrate sql`) in a one-off
    container of its image: Kratos serves nothing until they are applied."""
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.errors import OperationFailed

    platform = up.project.platform
    database = platform.services.identity.database
    address, creds = up.address("postgres"), up.credentials("postgres")
    password = up.secrets["IDENTITY_DB_PASSWORD"]
    wait_until_ready(lambda: ensure_database(address, creds, database, password), up.waiting("postgres"))
    up.event("identity", "migrating", "kratos migrate sql")
    secrets = str(up.project.root / PRIVATE / SECRETS_FILE)
    code, tail = Engine().run_on_network(
        platform.services.identity.image,
        migrate_command(),
        platform.network_name,
        {secrets: f"{IN_CONTAINER}/private/{SECRETS_FILE}"},
        container(platform).user or "",
    )
    if code != 0:
        raise OperationFailed(
            f"identity: its migrations failed (exit {code}): {tail.strip()[-400:]}",
            "`mindscape logs postgres`; is the postgres service up?",
        )


# -- what before_start does, as its pod's init containers (and the compose export's one-offs) -----

# Its role (password set each time) and database, made by the platform's user in Postgres'
# own image (psql quotes the names and the password: format's %I and %L).
DATABASE_SCRIPT = """until pg_isready -q; do echo waiting for postgres; sleep 2; done
psql -v ON_ERROR_STOP=1 -v name="$IDENTITY_DATABASE" -v password="$IDENTITY_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \\gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \\gexec
SQL
"""


def _database_environment(platform: Platform) -> dict[str, str]:
    pg = platform.services.postgres
    return {
        "PGHOST": "postgres",
        "PGPORT": "5432",
        "PGUSER": pg.user,
        "PGDATABASE": pg.database,
        "IDENTITY_DATABASE": platform.services.identity.database,
    }


INIT_STEPS = (
    InitStep(
        "database",
        args=lambda platform: ("sh", "-c", DATABASE_SCRIPT),
        image=lambda platform: platform.services.postgres.image,
        environment=_database_environment,
        secrets={"PGPASSWORD": "POSTGRES_PASSWORD", "IDENTITY_DB_PASSWORD": "IDENTITY_DB_PASSWORD"},
    ),
    # its image's entrypoint is kratos
    InitStep("migrate", args=lambda platform: tuple(migrate_command()[1:])),
)


def credentials(platform: Platform, secrets: Mapping[str, str]) -> Credentials:
    identity = platform.services.identity
    return Credentials(identity.database, secrets.get("IDENTITY_DB_PASSWORD", ""), identity.database)


SERVICE = ServiceDef(
    name="identity",
    summary="identities, sessions and second factors (Ory Kratos); the gateway asks it who a request is",
    settings=Identity,
    container=container,
    probe=HttpProbe("/health/ready"),
    depends_on=("postgres",),
    secrets=SECRETS,
    metrics=Metrics(ADMIN, "/admin/metrics/prometheus"),
    artifacts=(
        Artifact("identity/kratos.yml.j2", deploy("identity/kratos.yml")),
        Artifact("identity/identity.schema.json.j2", deploy("identity/identity.schema.json")),
        Artifact("identity/claims.jsonnet.j2", deploy("identity/claims.jsonnet")),
        Artifact(
            "identity/courier.jsonnet.j2", deploy("identity/courier.jsonnet"), lambda p: courier(p) == "log_store"
        ),
    ),
    credentials=credentials,
    prepare=prepare,
    inputs=inputs,
    before_start=before_start,
    problems=problems,
    gates=GATES,
    alerts=alerts,
    dashboard=dashboard,
    alert_when_down=False,  # its own IdentityServiceDown says what it means for the gateway
    kubernetes=KubeShape(
        run_as=10000,
        init_steps=INIT_STEPS,
        # its courier's way out: the log store's push API, or monitoring.smtp's relay
        talks_to=lambda p: (p.services.log_store() or "",) if courier(p) == "log_store" else (),
        outside_ports=lambda p: {p.monitoring.smtp.port} if p.monitoring.smtp is not None else set(),
        outside_hosts=lambda p: [("monitoring.smtp.host", p.monitoring.smtp.host)] if p.monitoring.smtp else [],
    ),
)


def endpoints(platform: Platform, public_port: int | None = None):
    """(public, admin) API endpoints of the identity service from this machine. The public port
    is the one `up` published (`port: auto` is known only then)."""
    from mindscape_ops.services.identity_client import Endpoint

    settings = platform.services.identity
    host = "127.0.0.1" if settings.bind == "0.0.0.0" else settings.bind
    port = public_port or (settings.port if isinstance(settings.port, int) else PUBLIC)
    return Endpoint(host, port), Endpoint(host, settings.admin_port)


def restart_to_sign(project: Project, patience: float = 60.0) -> bool:
    """Restart the identity service, if it runs, so it signs with the first key of jwks.json (it
    reads the set at start and keeps it an hour); True once it answers again."""
    import time

    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.services.identity_client import IdentityError

    engine = Engine()
    name = project.platform.container_name(SERVICE.name)
    found = engine.container_by_name(name)
    if found is None or not (found.get("State") or {}).get("Running"):
        return False
    engine.restart(name)
    public = engine.published_port(name, PUBLIC)
    endpoint = endpoints(project.platform, public)[0]
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            if endpoint.call("GET", "/health/ready")[0] == 200:
                return True
        except IdentityError:
            pass
        time.sleep(0.5)
    raise OperationFailed(
        f"identity: not ready {patience:.0f}s after its restart for the new signing key",
        "`mindscape logs identity` says why",
    )
