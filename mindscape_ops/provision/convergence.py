"""PURE convergence planning: (desired containers, observed containers) -> actions.

Drift is detected by hashing the desired container spec into a label, as docker compose
does; the spec (services/spec.py) is hashed whole, every field, and includes the *content*
of the config files a container mounts, so an edited alert rule or nginx.conf recreates its
service (docker compose misses that: docker/compose#11900). Secrets enter the hash as which
key goes where plus a one-way fingerprint of the value, never the value itself.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from mindscape_ops.services.spec import ContainerSpec

LABEL_PROJECT = "io.mindscape.project"
LABEL_SERVICE = "io.mindscape.service"
LABEL_CONFIG_HASH = "io.mindscape.config-hash"
LABEL_CONFIG_PARTS = "io.mindscape.config-parts"  # short hash per spec field: says *why* a recreate


@dataclass(frozen=True)
class Desired:
    """One container as `up` will create it: its completed spec, and what must be ready first."""

    spec: ContainerSpec
    depends_on: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def host_port(self) -> int | None:  # None: `auto` not picked yet (plan only)
        return self.spec.published_port

    @property
    def image_id(self) -> str | None:  # None: image not present yet
        return self.spec.image_id

    @cached_property
    def parts(self) -> dict[str, str]:
        return self.spec.parts()

    @cached_property
    def config_hash(self) -> str:
        return self.spec.config_hash()

    def labels(self) -> dict[str, str]:
        return {
            LABEL_PROJECT: self.spec.project,
            LABEL_SERVICE: self.spec.service,
            LABEL_CONFIG_HASH: self.config_hash,
            LABEL_CONFIG_PARTS: json.dumps(self.parts, sort_keys=True, separators=(",", ":")),
        }


@dataclass(frozen=True)
class Observed:
    """A container of this project as the engine reports it."""

    name: str
    service: str
    state: str  # created, running, exited, ...
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    labels: Mapping[str, str] = field(default_factory=dict)
    container_id: str = ""
    image: str = ""  # as created (the list's Image)
    ports: tuple[str, ...] = ()  # published: "127.0.0.1:5432->5432/tcp"

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
    if not changed or len(changed) == len(desired.parts):
        return "configuration changed"
    # host_port and published_port both read "host port": say it once
    words = dict.fromkeys(_WORDS.get(part, part.replace("_", " ")) for part in changed)
    return ", ".join(f"{word} changed" for word in words)


_WORDS = {"mounts": "mounted config", "secret_fingerprints": "secret", "published_port": "host port"}


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
