"""Where a provisioned service answers from the host: address, port and credentials.

`port: auto` services get their port picked by `up` and kept in state.json under "ports";
everything that connects (readiness, migrate, backup, check) asks here. So do the other port
settings a service lets be `auto` (ServiceDef.auto_ports, e.g. the log store's ingest port),
kept there under "<service>.<setting>".
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from mindscape_ops.errors import EnvironmentUnusable, UsageError
from mindscape_ops.services.contract import Address
from mindscape_ops.services.registry import BY_NAME
from mindscape_ops.workspace.project import Project

__all__ = [
    "Address",
    "DatabaseTarget",
    "auto_settings",
    "database_target",
    "platform_as_run",
    "published_port",
    "safe_display",
    "service_address",
    "setting_key",
]


def setting_key(service: str, setting: str) -> str:
    """Where state.json's "ports" keeps an `auto` port setting other than `port`."""
    return f"{service}.{setting}"


def auto_settings(platform) -> dict[str, tuple[str, str, int]]:
    """The enabled services' port settings (other than `port`) written `auto`: state key ->
    (service, setting, container port)."""
    enabled = platform.services.enabled()
    return {
        setting_key(service.name, setting): (service.name, setting, container_port)
        for service in BY_NAME.values()
        if service.name in enabled
        for setting, container_port in service.auto_ports.items()
        if getattr(enabled[service.name], setting, None) == "auto"
    }


def platform_as_run(project: Project, picked: dict[str, int | None] | None = None):
    """The platform as its containers run: each `auto` port setting other than `port` replaced
    by the port `up` picked (`picked`, else state.json's "ports", whose entries are checked
    when read: whole numbers from 1 to 65535). One never picked stays `auto`. What is rendered
    to files comes from the platform as written, never from this."""
    platform = project.platform
    wanted = auto_settings(platform)
    if not wanted:
        return platform
    kept = picked if picked is not None else project.workspace.read_state().get("ports", {})
    changes: dict[str, dict[str, int]] = {}
    for key, (service, setting, _) in wanted.items():
        port = kept.get(key)
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            changes.setdefault(service, {})[setting] = port
    if not changes:
        return platform
    services = platform.services
    updated = {name: getattr(services, name).model_copy(update=values) for name, values in changes.items()}
    return platform.model_copy(update={"services": services.model_copy(update=updated)})


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

    def redact(self, text: str) -> str:
        """`text` without this target's connection string or its password."""
        return redact(text, self.conninfo)


def database_target(project: Project, external: bool = True) -> DatabaseTarget:
    """DATABASE_URL (the configured variable) when set and `external`; else the provisioned
    postgres (`up` migrates that one only: never a production database named in the env)."""
    env_name = project.platform.database.url_env
    url = os.environ.get(env_name) if external else None
    if url:
        check_database_url(url, env_name)
        return DatabaseTarget(url, safe_display(url), external=True)
    name = project.platform.services.database()
    if name not in project.platform.services.enabled():
        raise UsageError(
            f"no database: services.{name} is not enabled and ${env_name} is not set",
            f"enable services.{name}, or export {env_name}=postgresql://user:pass@host:5432/db",
        )
    address = service_address(project, name)
    secrets = project.workspace.read_secrets()
    for key in BY_NAME[name].secrets:  # its password
        if not secrets.get(key):
            raise EnvironmentUnusable(
                f"no {key} in {project.workspace.secrets_file}",
                "run `mindscape up` (it generates secrets) or restore that file",
            )
    creds = BY_NAME[name].credentials_for(project.platform, secrets)
    conninfo = (
        f"postgresql://{quote(creds.user)}:{quote(creds.password)}@{address.host}:{address.port}/"
        f"{quote(creds.database)}?connect_timeout=5&application_name=mindscape"
    )
    display = f"postgresql://{creds.user}@{address.host}:{address.port}/{creds.database}"
    return DatabaseTarget(conninfo, display, external=False)


def safe_display(url: str) -> str:
    """user@host:port/db of a connection string, whatever its form; never its password
    (which may hide in the URL's userinfo, its query, or a key=value conninfo)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except ProgrammingError:
        return "(a database URL that cannot be parsed)"
    user = parts.get("user")
    host, port, dbname = parts.get("host") or "localhost", parts.get("port") or "5432", parts.get("dbname") or ""
    return f"postgresql://{f'{user}@' if user else ''}{host}:{port}/{dbname}"


# scheme://USERINFO@host...: the userinfo runs to the last '@' before the path
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@")
# ...as libpq reads it: up to the first '@' or '/' (a '?' or '#' in a password stays in it)
_LIBPQ_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@]*)@")
# an '@' in what libpq reads as the host: the password's tail (after a '?' or '#' too)
_AT_IN_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*@[^/?]*@")
# no '@' before the first '/', but one after it (before the query): a '/' in the password, which
# libpq would read as the end of host:port, putting the password's head in the port
_SLASH_IN_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*/[^?]*@")
URL_HINT = (
    "use the form postgresql://USER:PASSWORD@HOST:5432/DBNAME (an IPv6 host in brackets: [::1]; "
    "characters like @ : / ? # in the password percent-encoded: @ is %40)"
)


def check_database_url(url: str, env_name: str) -> None:
    """A connection string from the environment parses, else a clear error naming the variable
    (never the string: its password would go with it)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    userinfo = _USERINFO.match(url)
    if userinfo and "@" in userinfo.group(1) or _AT_IN_HOST.match(url):
        # parsed, the password's tail would become the host name, and appear in connection errors
        raise UsageError(f"${env_name}: the password in the URL holds an '@' that is not percent-encoded", URL_HINT)
    if _SLASH_IN_USERINFO.match(url):
        raise UsageError(
            f"${env_name}: an '@' after the first '/' of the URL (a '/' in the password that is not "
            "percent-encoded: %2F)",
            URL_HINT,
        )
    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        raise UsageError(f"${env_name} is not a valid Postgres connection URL: {reason}", URL_HINT) from None


def redact(text: str, conninfo: str) -> str:
    """`text` (a message that may quote a connection string) without that string or its password."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    secrets = {conninfo}
    for pattern in (_USERINFO, _LIBPQ_USERINFO):
        if userinfo := pattern.match(conninfo):
            password = userinfo.group(1).partition(":")[2]
            secrets |= {password, unquote(password)}
    secrets |= set(re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", conninfo))
    with contextlib.suppress(ProgrammingError):
        secrets.add(str(conninfo_to_dict(conninfo).get("password") or ""))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
