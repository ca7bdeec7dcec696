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
from dataclasses import dataclass
from functools import cached_property

# The labels and the engine's rows are the adapters' (provision/ plans with them).
from mindscape_ops.adapters.engine_rows import Observed
from mindscape_ops.adapters.labels import LABEL_CONFIG_HASH, LABEL_CONFIG_PARTS, LABEL_PROJECT, LABEL_SERVICE
from mindscape_ops.services.spec import ContainerSpec

__all__ = ["LABEL_CONFIG_HASH", "LABEL_CONFIG_PARTS", "LABEL_PROJECT", "LABEL_SERVICE", "Observed"]


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
