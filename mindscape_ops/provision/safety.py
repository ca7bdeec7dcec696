"""What `up` and `down` check before they change anything, so that a broken workspace stops
them with the way out instead of costing data: containers of the same `project:` made from
another folder, and data volumes older than the passwords that would be generated for them."""

from __future__ import annotations

from collections.abc import Mapping

from mindscape_ops.adapters.docker import Engine
from mindscape_ops.errors import OperationFailed
from mindscape_ops.provision.ownership import refuse_others
from mindscape_ops.services.spec import ContainerSpec, secret_fingerprint
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


LABEL_SECRETS = "io.mindscape.secrets"  # on a data volume: a one-way fingerprint of the passwords it was made with


def secrets_fingerprint(spec: ContainerSpec, secrets: Mapping[str, str]) -> str:
    """Which passwords a data volume was made with, as a one-way fingerprint (never a value)."""
    return ",".join(secret_fingerprint(key, secrets.get(key, "")) for key in sorted(spec.secret_keys()))


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
    replaced = sorted(
        spec.volume
        for spec in specs.values()
        if spec.volume in volumes
        and spec.volume not in stranded
        and volumes[spec.volume].get(LABEL_SECRETS) not in (None, secrets_fingerprint(spec, have))
    )
    if replaced:
        raise OperationFailed(
            f"the data volume(s) {', '.join(replaced)} were made with other passwords than "
            f"{project.workspace.secrets_file} holds now (was it deleted and made anew, by `init` or `up`?); "
            "the services would refuse every login. Nothing was changed",
            "restore the secrets.env the data was made with, or delete the data and start afresh: "
            "`mindscape down --volumes`",
        )
    if stranded:
        keys = sorted({key for missing in stranded.values() for key in missing})
        raise OperationFailed(
            f"{project.workspace.secrets_file} has no {', '.join(keys)}, but the data volume(s) "
            f"{', '.join(sorted(stranded))} already hold data made with the old password; new passwords "
            "would lock the services out of it. Nothing was changed",
            "restore .mindscape/secrets.env (from a backup or the machine it was made on), or delete the data "
            "and start afresh: `mindscape down --volumes`",
        )
