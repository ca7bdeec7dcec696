"""PURE convergence planning: (desired containers, observed containers) -> actions.

Drift is detected by hashing the canonical desired configuration of a container into a
label, as docker compose does, but the hash here also covers the *content* of the config
files a container mounts, so an edited alert rule or nginx.conf recreates its service
(docker compose misses that: docker/compose#11900). Secret values enter the hash only as
their own hashes; they are never stored anywhere but .mindscape/secrets.env.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mindscape_ops.services.spec import HEALTHCHECK, LOG_OPTIONS

if TYPE_CHECKING:
    from mindscape_ops.services.spec import ContainerSpec

LABEL_PROJECT = "io.mindscape.project"
LABEL_SERVICE = "io.mindscape.service"
LABEL_CONFIG_HASH = "io.mindscape.config-hash"
LABEL_CONFIG_PARTS = "io.mindscape.config-parts"  # short hash per part: says *why* a recreate


def json_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Desired:
    """One container as `up` will create it, with its config hash."""

    spec: ContainerSpec
    name: str
    host_port: int | None  # None: `auto` not picked yet (plan only)
    image_id: str | None  # None: image not present yet
    parts: dict[str, str]  # part -> short hash

    @property
    def config_hash(self) -> str:
        return json_hash(self.parts)


def desire(
    spec: ContainerSpec,
    name: str,
    network: str,
    host_port: int | None,
    image_id: str | None,
    secret_values: Mapping[str, str],
    mount_digests: Mapping[str, str],
) -> Desired:
    """Hash everything that shapes the container; `mount_digests` maps a mount source to
    the sha256 of its content (a folder: of all its files)."""
    secrets = {
        env: hashlib.sha256(secret_values.get(key, "").encode()).hexdigest() for env, key in spec.secrets.items()
    }
    parts = {
        "image": {"ref": spec.image, "id": image_id},
        "command": {"command": list(spec.command), "user": spec.user},
        "environment": {"plain": spec.environment, "secrets": secrets},
        "ports": {"bind": spec.bind, "host": host_port, "container": spec.container_port},
        "mounts": [
            {"source": m.source, "target": m.target, "ro": m.read_only, "content": mount_digests.get(m.source)}
            for m in spec.mounts
        ],
        "runtime": {
            "volume": spec.volume_target,
            "healthcheck": [list(spec.healthcheck), HEALTHCHECK, spec.start_period],
            "logs": LOG_OPTIONS,
            "network": network,
            "reach_host": spec.reach_host,
        },
    }
    return Desired(spec, name, host_port, image_id, {key: json_hash(value)[:12] for key, value in parts.items()})


@dataclass(frozen=True)
class Observed:
    """A container of this project as the engine reports it."""

    name: str
    service: str
    state: str  # created, running, exited, ...
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    labels: Mapping[str, str] = field(default_factory=dict)
    container_id: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


class Kind(enum.StrEnum):
    CREATE = "create"
    RECREATE = "recreate"
    START = "start"
    UNCHANGED = "unchanged"
    REMOVE = "remove"


@dataclass(frozen=True)
class Action:
    service: str
    kind: Kind
    reason: str
    desired: Desired | None = None
    observed: Observed | None = None

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "action": str(self.kind), "reason": self.reason}


def _why(desired: Desired, observed: Observed) -> str:
    try:
        before = json.loads(observed.labels.get(LABEL_CONFIG_PARTS, "{}"))
    except json.JSONDecodeError:
        before = {}
    changed = [part for part, digest in desired.parts.items() if before.get(part) != digest]
    if not changed:
        return "configuration changed"
    words = {
        "image": "image changed",
        "command": "command changed",
        "environment": "environment changed",
        "ports": "ports changed",
        "mounts": "mounted config changed",
        "runtime": "volume/healthcheck changed",
    }
    return ", ".join(words.get(part, f"{part} changed") for part in changed)


def converge(desired: Mapping[str, Desired], observed: Mapping[str, Observed]) -> list[Action]:
    """Actions bringing `observed` to `desired`, in start order then removals."""
    actions: list[Action] = []
    for service, want in desired.items():
        have = observed.get(service)
        if have is None:
            actions.append(Action(service, Kind.CREATE, "not created yet", want))
        elif have.labels.get(LABEL_CONFIG_HASH) != want.config_hash:
            actions.append(Action(service, Kind.RECREATE, _why(want, have), want, have))
        elif not have.running:
            actions.append(Action(service, Kind.START, f"container is {have.state}", want, have))
        else:
            actions.append(Action(service, Kind.UNCHANGED, "up to date", want, have))
    for service, have in sorted(observed.items()):
        if service not in desired:
            actions.append(
                Action(service, Kind.REMOVE, "no longer enabled in platform.yaml (its volume is kept)", None, have)
            )
    return actions
