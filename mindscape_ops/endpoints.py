"""Where a provisioned service answers from the host: address, port and credentials.

`port: auto` services get their port picked by `up` and kept in state.json under "ports";
everything that connects (readiness, migrate, backup, check) asks here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from .errors import EnvironmentUnusable, UsageError
from .project import Project


@dataclass(frozen=True)
class Address:
    host: str
    port: int


def published_port(project: Project, service: str) -> int:
    svc = project.platform.services.enabled().get(service)
    if svc is None:
        raise UsageError(
            f"services.{service} is not enabled in {project.loaded.files[0]}", f"add `{service}: {{}}` under services:"
        )
    if svc.port != "auto":
        return int(svc.port)
    port = project.workspace.read_state().get("ports", {}).get(service)
    if not isinstance(port, int):
        raise EnvironmentUnusable(
            f"{service} has `port: auto` and no port was picked yet", f"run `mindscape up {service}` first"
        )
    return port


def service_address(project: Project, service: str) -> Address:
    bind = project.platform.services.enabled()[service].bind if service in project.platform.services.enabled() else ""
    host = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    return Address(host, published_port(project, service))


@dataclass(frozen=True)
class DatabaseTarget:
    """A Postgres to connect to. `display` is safe to print: it never holds the password."""

    conninfo: str
    display: str
    external: bool  # True when it came from DATABASE_URL (or the configured variable)


def database_target(project: Project, via_pgbouncer: bool = False) -> DatabaseTarget:
    """DATABASE_URL (the configured variable) when set; else the provisioned postgres."""
    env_name = project.platform.database.url_env
    url = os.environ.get(env_name)
    if url:
        from .workspace import redact

        return DatabaseTarget(url, redact(url, set()), external=True)
    pg = project.platform.services.postgres
    if pg is None or not pg.enabled:
        raise UsageError(
            f"no database: services.postgres is not enabled and ${env_name} is not set",
            f"enable services.postgres, or export {env_name}=postgresql://user:pass@host:5432/db",
        )
    service = "pgbouncer" if via_pgbouncer else "postgres"
    address = service_address(project, service)
    password = project.workspace.read_secrets().get("POSTGRES_PASSWORD")
    if not password:
        raise EnvironmentUnusable(
            f"no POSTGRES_PASSWORD in {project.workspace.secrets_file}",
            "run `mindscape up` (it generates secrets) or restore that file",
        )
    conninfo = (
        f"postgresql://{quote(pg.user)}:{quote(password)}@{address.host}:{address.port}/"
        f"{quote(pg.database)}?connect_timeout=5&application_name=mindscape"
    )
    display = f"postgresql://{pg.user}@{address.host}:{address.port}/{pg.database}"
    return DatabaseTarget(conninfo, display, external=False)
