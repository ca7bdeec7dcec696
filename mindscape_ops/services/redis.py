"""Redis: the caching layer. Ready when it answers PONG and has loaded its dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from mindscape_ops.config.base import ImageRef, PortSpec, Service
from mindscape_ops.config.types import Size
from mindscape_ops.services.definition import Artifact, ServiceDef, deploy
from mindscape_ops.services.spec import Mount, Probe

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


class Redis(Service):
    image: ImageRef = "redis:7"
    port: PortSpec = 6379
    maxmemory: Size = Size("256mb")
    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = "allkeys-lru"
    appendonly: bool = True


def container(platform: Platform) -> dict:
    return dict(
        container_port=6379,
        user="redis",
        command=("sh", "-c", 'exec redis-server /usr/local/etc/redis/redis.conf --requirepass "$REDIS_PASSWORD"'),
        secrets={"REDIS_PASSWORD": "REDIS_PASSWORD"},
        volume_target="/data",
        mounts=(Mount(f"{platform.paths.deploy}/redis/redis.conf", "/usr/local/etc/redis/redis.conf"),),
        healthcheck=("CMD-SHELL", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'),
    )


def credentials(platform: Platform, secrets: Mapping[str, str]):
    from mindscape_ops.provision.readiness import Credentials

    return Credentials(password=secrets.get("REDIS_PASSWORD", ""))


SERVICE = ServiceDef(
    name="redis",
    summary="the caching layer",
    settings=Redis,
    container=container,
    probe=Probe("redis"),
    secrets=("REDIS_PASSWORD",),
    artifacts=(Artifact("redis/redis.conf.j2", deploy("redis/redis.conf")),),
    holds_data=True,
    credentials=credentials,
)
