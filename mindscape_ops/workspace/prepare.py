"""Everything a project needs on disk before its containers can run: secrets, rendered
files, and the secret-derived files services mount from .mindscape/ (alert receivers'
secrets, pgbouncer's userlist). A fresh clone plus `mindscape up` gets all of it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mindscape_ops.services.spec import required_secrets
from mindscape_ops.workspace.files import atomic_write, cannot_write
from mindscape_ops.workspace.project import Project

if TYPE_CHECKING:
    from mindscape_ops.render import FileChange


@dataclass
class Prepared:
    secrets: dict[str, str]
    changes: list[FileChange]  # what rendering did, file by file
    warnings: list[str] = field(default_factory=list)  # worth telling the user; nothing failed


def prepare(project: Project, force: bool = False) -> Prepared:
    """Secrets generated (never overwritten), then files rendered and derived files written.
    Hand-edited generated files are kept unless `force` (their changes say HAND_EDITED)."""
    from mindscape_ops import render

    secrets = project.workspace.ensure_secrets(required_secrets(project.platform))
    changes = render.write(project.loaded, project.workspace, force=force)
    return Prepared(secrets, changes, write_derived_files(project, secrets))


def write_derived_files(project: Project, secrets: dict[str, str]) -> list[str]:
    """Write the files services mount from .mindscape/; returns warnings."""
    warnings: list[str] = []
    enabled = project.platform.services.enabled()
    if "alertmanager" in enabled:
        warnings += _write_receiver_secrets(project)
    if "postgres" in enabled:
        from mindscape_ops.services.pgbouncer_auth import ensure_pooler_files, initdb_dir

        # postgres always mounts its init folder, so adding pgbouncer later does not recreate it
        initdb_dir(project.root).mkdir(parents=True, exist_ok=True)
        if "pgbouncer" in enabled:
            ensure_pooler_files(project.root, project.platform.services.postgres.user, secrets["POSTGRES_PASSWORD"])
    return warnings


def _write_receiver_secrets(project: Project) -> list[str]:
    """One file per receiver secret, from its environment variable. An unset variable keeps the
    value written before; with none, the file is empty (Alertmanager needs it to start) and
    alerts to that receiver fail: the user hears so now, not at the first incident."""
    folder = project.workspace.ensure_dir() / "alertmanager"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise cannot_write(folder, exc) from None
    warnings = []
    for receiver in project.platform.monitoring.receivers:
        if not receiver.secret_env:
            continue
        target = folder / receiver.name
        value = os.environ.get(receiver.secret_env)
        try:
            if value is not None or not target.exists():
                # readable by the container's unprivileged user; .mindscape/ itself is 0700
                atomic_write(target, value or "", mode=0o644)
            empty = not target.read_text().strip()
        except OSError as exc:
            raise cannot_write(target, exc) from None
        if empty:
            problem = "is set but empty" if value == "" else "is not set"
            warnings.append(
                f"receiver {receiver.name}: ${receiver.secret_env} {problem}; alerts to it will fail until it is"
            )
    return warnings
