"""How the identity service's e-mails (verification, recovery) leave: through monitoring.smtp
(Kratos' SMTP connection URI, with the relay's password from its variable or file), else as
lines of the log store, else kept in its database."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


def courier(platform: Platform) -> str:
    """Pure: how its e-mails (verification, recovery) leave: `smtp` through monitoring.smtp,
    else `log_store` (each one a line of the log store, posted by its courier), else `queue`
    (kept in its database, no courier runs; the admin API lists them)."""
    if platform.monitoring.smtp is not None:
        return "smtp"
    store = platform.services.log_store()
    return "log_store" if store is not None else "queue"


def smtp_on_host(platform: Platform) -> bool:
    """Pure: whether monitoring.smtp's relay is on host.docker.internal, which resolves in the
    container only with the host-gateway entry (Linux engines have no default)."""
    smtp = platform.monitoring.smtp
    return smtp is not None and smtp.host == "host.docker.internal"


def smtp_uri(platform: Platform, password: str | None) -> str:
    """Pure: Kratos' courier.smtp.connection_uri for monitoring.smtp: implicit TLS on port 465
    (smtps), else STARTTLS, required unless `require_tls: false`."""
    from urllib.parse import quote

    smtp = platform.monitoring.smtp
    assert smtp is not None
    user = quote(smtp.username or "", safe="")
    login = f"{user}:{quote(password, safe='')}@" if user and password else (f"{user}@" if user else "")
    scheme = "smtps" if smtp.port == 465 else "smtp"
    query = "" if smtp.require_tls or scheme == "smtps" else "?disable_starttls=true"
    return f"{scheme}://{login}{smtp.host}:{smtp.port}/{query}"


def smtp_password(project: Project) -> tuple[str | None, str]:
    """monitoring.smtp's password from its variable or file (None: unset or unreadable), and how
    to name where it comes from."""
    from pathlib import Path

    smtp = project.platform.monitoring.smtp
    assert smtp is not None
    if smtp.password_env:
        return os.environ.get(smtp.password_env), f"${smtp.password_env}"
    where = Path(smtp.password_file or "").expanduser()
    where = where if where.is_absolute() else project.root / where
    try:
        return where.read_text().strip(), str(smtp.password_file)
    except OSError as exc:
        return None, f"{smtp.password_file} ({exc.strerror or exc})"
