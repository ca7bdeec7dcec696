"""Everything a project needs on disk before its containers can run: secrets, rendered
files, and the secret-derived files services mount from .mindscape/ (alert receivers'
secrets, pgbouncer's userlist). A fresh clone plus `mindscape up` gets all of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mindscape_ops.adapters.files import write_if_changed
from mindscape_ops.services.spec import required_secrets
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
    write_secret_files(project, secrets)
    from mindscape_ops.render.ci import ci_warnings

    return Prepared(secrets, changes, ci_warnings(project.platform) + write_derived_files(project, secrets))


def write_secret_files(project: Project, secrets: dict[str, str]) -> None:
    """One file per secret a container reads from a file (.mindscape/secrets/<KEY>), kept in step
    with secrets.env. Readable by the containers' unprivileged users; .mindscape/ itself is 0700."""
    from mindscape_ops.services.spec import SECRETS_ON_HOST, container_specs

    wanted = {key for spec in container_specs(project.platform).values() for key in spec.secret_files.values()}
    for key in sorted(wanted):
        write_if_changed(project.root / SECRETS_ON_HOST / key, secrets[key])


def write_derived_files(project: Project, secrets: dict[str, str]) -> list[str]:
    """Write the files services mount from .mindscape/ (each service's `prepare` hook);
    returns warnings."""
    from mindscape_ops.services.registry import SERVICES

    enabled = project.platform.services.enabled()
    warnings: list[str] = []
    for service in SERVICES:
        if service.prepare and service.name in enabled:
            warnings += service.prepare(project, secrets)
    if project.platform.kubernetes is not None:  # the secretGenerator's input, from the files above
        from mindscape_ops.render.kubernetes import prepare_cluster

        warnings += prepare_cluster(project.root, project.platform, secrets)
    return warnings
