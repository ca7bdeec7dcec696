"""Everything a project needs on disk before its containers can run: secrets, rendered
files, and the secret-derived files services mount from .mindscape/ (alert receivers'
secrets, pgbouncer's userlist). A fresh clone plus `mindscape up` gets all of it."""

from __future__ import annotations

import os

from .containers import required_secrets
from .fsutil import atomic_write
from .project import Project


def prepare(project: Project, write_files: bool = True, kept: list[str] | None = None) -> dict[str, str]:
    """Secrets generated (never overwritten), then files rendered and derived files written.
    Hand-edited generated files are kept; their paths are added to `kept`."""
    secrets = project.workspace.ensure_secrets(required_secrets(project.platform))
    if write_files:
        from . import render

        changes = render.write(project.loaded, project.workspace)
        if kept is not None:
            kept.extend(c.path for c in changes if c.status is render.Status.HAND_EDITED)
        write_derived_files(project, secrets)
    return secrets


def write_derived_files(project: Project, secrets: dict[str, str]) -> None:
    enabled = project.platform.services.enabled()
    if "alertmanager" in enabled:
        _write_receiver_secrets(project)
    if "pgbouncer" in enabled:
        from .pooling import ensure_pooler_files

        ensure_pooler_files(project.root, project.platform.services.postgres.user, secrets["POSTGRES_PASSWORD"])


def _write_receiver_secrets(project: Project) -> None:
    folder = project.workspace.ensure_dir() / "alertmanager"
    folder.mkdir(exist_ok=True)
    for receiver in project.platform.monitoring.receivers:
        if receiver.secret_env:
            target = folder / receiver.name
            value = os.environ.get(receiver.secret_env)
            if value is not None or not target.exists():
                # readable by the container's unprivileged user; .mindscape/ itself is 0700
                atomic_write(target, value or "", mode=0o644)
