"""One description of a container: what `up` creates, what the compose export writes, and
what the drift hash covers.

A service's module says what is particular to its container (command, environment, mounts,
...); `container_specs` adds what every container has (name, network, port binding, volume,
healthcheck timing, log options). `up` then completes each spec with what only the engine
and the disk know (the chosen host port, the image id, the content of mounted files, a
fingerprint of each secret) and hashes the completed spec, every field of it, so no field
can be left out of drift detection. Docker SDK arguments are made from the spec only when a
container is created. Secret values are never part of a spec: only which secret goes where.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the model stays unloaded for the engine adapter and the no-op `up`
    from mindscape_ops.config.models import Platform

# Secrets reach a container as read-only files here wherever its image can read one (a
# `*_FILE` variable), so `docker inspect` shows a path, never a password.
SECRETS_IN_CONTAINER = "/run/secrets"
SECRETS_ON_HOST = ".mindscape/secrets"

# How Docker runs each container's own healthcheck and keeps its logs; `up` and the
# compose export both read these, so the two stay equivalent.
HEALTHCHECK = MappingProxyType({"interval_s": 5, "timeout_s": 3, "retries": 3})
LOG_OPTIONS = MappingProxyType({"max-size": "10m", "max-file": "3"})
# The name `reach_host` adds to a container's /etc/hosts for the Docker host (extra_hosts); no
# DNS server serves it, and a container started otherwise (or a cluster's pod) has no such entry.
HOST_NAME = "host.docker.internal"


@dataclass(frozen=True)
class Mount:
    """A bind mount. `source` is relative to the project root (a rendered file or folder, or a
    .mindscape/ file), or an absolute host path when `host` is set."""

    source: str
    target: str
    read_only: bool = True
    host: bool = False  # a path of the host itself (e.g. / for node_exporter), not of the project
    live: bool = False  # written while the container runs (e.g. metrics files): not drift, not hashed
    digest: str | None = None  # sha256 of the content, set by `up` (a folder: every file in it)
    # a file only its owner may read (a libpq password file, 0600): Kubernetes cannot give a
    # Secret's file an owner, so a pod gets the service's KubeShape.secret_env instead
    owner_only: bool = False
    # needed on the Docker network only (the gateway's /etc/hosts lookup of host.docker.internal,
    # a name a cluster does not have): not mounted in a pod
    docker_only: bool = False


@dataclass(frozen=True)
class Container:
    """What a service module says of its container (`ServiceDef.container`); `container_specs`
    adds what every container has."""

    container_port: int  # the port `up` publishes and probes
    extra_ports: dict[int, int] = field(default_factory=dict)  # see ContainerSpec
    command: tuple[str, ...] = ()
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # env var -> key, passed as a value
    secret_files: dict[str, str] = field(default_factory=dict)  # env var -> key, passed as a file
    volume_target: str | None = None  # where its data volume is mounted (None: no volume)
    mounts: tuple[Mount, ...] = ()
    healthcheck: tuple[str, ...] = ()  # Docker HEALTHCHECK test; () when the image has no shell
    reach_host: bool = False  # add host.docker.internal -> host gateway
    # Ports it also listens on, on the platform network only (not published): where Prometheus
    # scrapes it when that is not `container_port`. Declared, not part of the spec: nothing runs
    # differently for it; the contract test holds `ServiceDef.metrics` to it.
    also_listens: tuple[int, ...] = ()
    # An image derived from the configured one (None: that one as is), built by `up` from this
    # rendered build file (relative to the project root) when the engine lacks it or it changed.
    image: str | None = None
    build_file: str | None = None


@dataclass(frozen=True)
class ContainerSpec:
    service: str
    image: str
    container_port: int
    host_port: int | str  # as written: a number, or "auto"
    bind: str
    # more ports published on the same address: container port -> fixed host port (e.g. OTLP
    # receivers beside a UI); the first port above is the one `up` probes
    extra_ports: dict[int, int] = field(default_factory=dict)
    project: str = ""  # `project:` of platform.yaml, which owns the container
    name: str = ""  # <project>-<service>
    network: str = ""  # <project>, where the container is known by its service name
    command: tuple[str, ...] = ()
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    # container env var -> key in .mindscape/secrets.env, for images that take a secret only as
    # a value; `up` puts the value in at create time, never in the spec
    secrets: dict[str, str] = field(default_factory=dict)
    # container env var -> key, for images that read the secret from a file (POSTGRES_PASSWORD_FILE):
    # the variable holds /run/secrets/<key>, mounted from .mindscape/secrets/<key>
    secret_files: dict[str, str] = field(default_factory=dict)
    volume: str | None = None  # the named volume <project>-<service>-data ...
    volume_target: str | None = None  # ... and where it is mounted
    mounts: tuple[Mount, ...] = ()
    healthcheck: tuple[str, ...] = ()  # Docker HEALTHCHECK test, e.g. ("CMD-SHELL", "..."); () for none
    start_period: float = 0.0  # seconds of grace for Docker's healthcheck (the service's health.start_period)
    healthcheck_timing: dict[str, int] = field(default_factory=lambda: dict(HEALTHCHECK))
    log_driver: str = "json-file"  # or the log store's driver (a service with a log_sink)
    log_options: dict[str, str] = field(default_factory=lambda: dict(LOG_OPTIONS))
    reach_host: bool = False  # add host.docker.internal -> host gateway (to reach the app)
    # Set by `up` (None in the compose export and in a plan that has not picked them):
    published_port: int | None = None  # the host port, once an `auto` port is picked
    image_id: str | None = None
    secret_fingerprints: dict[str, str] = field(default_factory=dict)  # env var -> fingerprint of its value

    def completed(
        self,
        published_port: int | None,
        image_id: str | None,
        mount_digests: dict[str, str],
        secret_values: dict[str, str],
    ) -> ContainerSpec:
        """This spec with what only the engine and the disk know."""
        return dataclasses.replace(
            self,
            published_port=published_port,
            image_id=image_id,
            mounts=tuple(dataclasses.replace(m, digest=mount_digests.get(m.source)) for m in self.mounts),
            secret_fingerprints={
                env: secret_fingerprint(key, secret_values.get(key, ""))
                for env, key in {**self.secrets, **self.secret_files}.items()
            },
        )

    def secret_keys(self) -> set[str]:
        """The keys of secrets.env this container needs, as values or as files."""
        return {*self.secrets.values(), *self.secret_files.values()}

    def hash_input(self) -> dict[str, Any]:
        """Every field, as JSON-ready values; secret values are not in a spec, so not here. A
        mount's `owner_only` counts only when set, so adding it left every other container's
        hash (and so the container) as it was."""
        fields = dataclasses.asdict(self)
        for mount in fields["mounts"]:
            if not mount["owner_only"]:
                del mount["owner_only"]
        return fields

    def parts(self) -> dict[str, str]:
        """A short hash per field: the label that says *why* a container is recreated."""
        return {name: json_hash(value)[:12] for name, value in self.hash_input().items()}

    def config_hash(self) -> str:
        return json_hash(self.hash_input())


def json_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def secret_fingerprint(key: str, value: str) -> str:
    """Changes when the value changes, so a new password recreates its container; a one-way
    hash of the key and value, so the label it ends up in gives nothing away."""
    return hashlib.sha256(f"mindscape-secret\0{key}\0{value}".encode()).hexdigest()[:16]


def build_files(platform: Platform) -> dict[str, str]:
    """service -> the rendered build file of its derived image (Container.build_file), for the
    enabled services that have one: what `up` builds, and the compose export's `build:`."""
    from mindscape_ops.services.registry import SERVICES

    enabled = platform.services.enabled()
    found = {}
    for service in SERVICES:
        if service.name in enabled:
            path = service.container(platform).build_file
            if path:
                found[service.name] = path
    return found


def container_specs(platform: Platform) -> dict[str, ContainerSpec]:
    """Specs of every enabled service, in start order."""
    from mindscape_ops.services.registry import SERVICES

    enabled = platform.services.enabled()
    sink = next((s for s in SERVICES if s.log_sink is not None and s.name in enabled), None)
    specs: dict[str, ContainerSpec] = {}
    for service in SERVICES:
        settings = enabled.get(service.name)
        if settings is None:
            continue
        own = service.container(platform)
        logging = sink.log_sink(platform, service.name) if sink and sink.log_sink and sink is not service else None
        environment, mounts = own.environment, own.mounts
        if own.secret_files:  # the variable names the file; the file is mounted read-only
            environment = {**environment, **{env: secret_path(k) for env, k in own.secret_files.items()}}
            files = sorted(set(own.secret_files.values()))
            mounts = (*mounts, *(Mount(f"{SECRETS_ON_HOST}/{key}", secret_path(key)) for key in files))
        specs[service.name] = ContainerSpec(
            service=service.name,
            image=own.image or settings.image,
            host_port=settings.port,
            bind=settings.bind,
            project=platform.project,
            name=platform.container_name(service.name),
            network=platform.network_name,
            volume=platform.volume_name(service.name) if own.volume_target else None,
            start_period=settings.health.start_period.seconds,
            **{**_fields(own), "environment": environment, "mounts": mounts},
            **({"log_driver": logging[0], "log_options": logging[1]} if logging is not None else {}),
        )
    return specs


def _fields(container: Container) -> dict[str, Any]:
    """A Container's fields, shallowly (dataclasses.asdict would copy the Mounts into dicts)."""
    return {
        f.name: getattr(container, f.name)
        for f in dataclasses.fields(container)
        if f.name not in ("also_listens", "image", "build_file")
    }


def required_secrets(platform: Platform) -> tuple[str, ...]:
    """Secret keys the enabled services need, in a stable order."""
    from mindscape_ops.services.registry import SERVICES

    enabled = platform.services.enabled()
    return tuple(key for service in SERVICES if service.name in enabled for key in service.secrets)


def secret_path(key: str) -> str:
    return f"{SECRETS_IN_CONTAINER}/{key}"


def wget_healthcheck(port: int, path: str) -> tuple[str, ...]:
    return ("CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1")
