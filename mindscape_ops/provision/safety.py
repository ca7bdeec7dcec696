"""What `up` and `down` check before they change anything, so that a broken workspace stops
them with the way out instead of costing data: containers of the same `project:` made from
another folder, and data volumes older than the passwords that would be generated for them."""

from __future__ import annotations

from collections.abc import Mapping

from mindscape_ops.adapters.docker import Engine
from mindscape_ops.errors import OperationFailed
from mindscape_ops.provision.ownership import refuse_others
from mindscape_ops.services.spec import ContainerSpec
from mindscape_ops.workspace.project import Project


def check_before_up(project: Project, engine: Engine, specs: Mapping[str, ContainerSpec]) -> None:
    name = project.platform.project
    containers = engine.containers(name)
    volumes = engine.volume_labels(name)
    refuse_others(project, [(c.name, c.labels) for c in containers.values()])
    refuse_others(project, volumes.items())
    _refuse_new_passwords_for_old_data(project, specs, volumes)


def check_before_down(project: Project, engine: Engine, with_volumes: bool) -> None:
    name = project.platform.project
    refuse_others(project, [(c.name, c.labels) for c in engine.containers(name).values()])
    if with_volumes:
        refuse_others(project, engine.volume_labels(name).items())


def _refuse_new_passwords_for_old_data(
    project: Project, specs: Mapping[str, ContainerSpec], volumes: Mapping[str, Mapping[str, str]]
) -> None:
    """`up` generates a missing secret. For a service whose data volume already exists that is a
    new password for data set up with the old one: the service would start, then refuse every
    login. Stop first, with the way out; nothing is generated or recreated."""
    have = project.workspace.read_secrets()
    stranded = {
        spec.volume: sorted(key for key in spec.secret_keys() if key not in have)
        for spec in specs.values()
        if spec.volume in volumes and any(key not in have for key in spec.secret_keys())
    }
    if stranded:
        keys = sorted({key for missing in stranded.values() for key in missing})
        raise OperationFailed(
            f"{project.workspace.secrets_file} has no {', '.join(keys)}, but the data volume(s) "
            f"{', '.join(sorted(stranded))} already hold data made with the old password; new passwords "
            "would lock the services out of it. Nothing was changed",
            "restore .mindscape/secrets.env (from a backup or the machine it was made on), or delete the data "
            "and start afresh: `mindscape down --volumes`",
        )
