"""Alertmanager: routes Prometheus' alerts to the receivers in `monitoring.receivers`. Their
secrets (webhook URLs, keys) reach it as files under .mindscape/alertmanager, never in a
rendered file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mindscape_ops.check.monitoring import ALERTMANAGER_GATES
from mindscape_ops.config.base import ImageRef, PortSpec, Service
from mindscape_ops.services.definition import Artifact, Metrics, ServiceDef, deploy
from mindscape_ops.services.spec import Mount, Probe, wget_healthcheck

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


class Alertmanager(Service):
    image: ImageRef = "prom/alertmanager:v0.27.0"
    port: PortSpec = 9093


def container(platform: Platform) -> dict:
    return dict(
        container_port=9093,
        command=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        volume_target="/alertmanager",
        mounts=(
            Mount(f"{platform.paths.deploy}/alertmanager", "/etc/alertmanager"),
            Mount(".mindscape/alertmanager", "/etc/alertmanager-secrets"),
        ),
        healthcheck=wget_healthcheck(9093, "/-/ready"),
    )


def write_receiver_secrets(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """One file per receiver secret, from its environment variable. An unset variable keeps the
    value written before; with none, the file is empty (Alertmanager needs it to start) and
    alerts to that receiver fail: the user hears so now, not at the first incident."""
    from mindscape_ops.workspace.files import atomic_write, cannot_write

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


SERVICE = ServiceDef(
    name="alertmanager",
    summary="alert routing to the receivers",
    settings=Alertmanager,
    container=container,
    probe=Probe("http", "/-/ready"),
    metrics=Metrics(9093),
    artifacts=(Artifact("alertmanager/alertmanager.yml.j2", deploy("alertmanager/alertmanager.yml")),),
    prepare=write_receiver_secrets,
    gates=ALERTMANAGER_GATES,  # its `mindscape check` gates
)
