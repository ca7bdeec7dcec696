"""Redis: the caching layer. Ready when it answers PONG and has loaded its dataset."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from mindscape_ops.services.contract import Credentials, Failed, Gate, NotReady, as_configured
from mindscape_ops.services.definition import Artifact, KubeShape, ServiceDef, deploy
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Size

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


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


USERS_ACL = ".mindscape/redis/users.acl"


def container(platform: Platform) -> Container:
    return Container(
        container_port=6379,
        user="redis",
        command=("redis-server", "/usr/local/etc/redis/redis.conf"),
        # the password file is for the healthcheck; Redis itself checks a hash (users.acl)
        secret_files={"REDIS_PASSWORD_FILE": "REDIS_PASSWORD"},
        volume_target="/data",
        mounts=(
            Mount(f"{platform.paths.deploy}/redis/redis.conf", "/usr/local/etc/redis/redis.conf"),
            Mount(USERS_ACL, "/usr/local/etc/redis/users.acl"),
        ),
        healthcheck=("CMD-SHELL", 'REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli ping | grep -q PONG'),
    )


def write_users_acl(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """The default user's ACL with the sha256 of its password (Redis' `#<hash>` form): neither
    the config nor the command line nor the environment holds the password itself."""
    from mindscape_ops.adapters.files import write_if_changed

    digest = hashlib.sha256(secrets["REDIS_PASSWORD"].encode()).hexdigest()
    write_if_changed(project.root / USERS_ACL, f"user default on #{digest} ~* &* +@all\n")
    return []


def credentials(platform: Platform, secrets: Mapping[str, str]) -> Credentials:
    return Credentials(password=secrets.get("REDIS_PASSWORD", ""))


class Ping:
    """Ready when it answers PONG and has loaded its dataset."""

    def check(self, host: str, port: int, creds: Credentials) -> None:
        import redis

        client = redis.Redis(
            host=host, port=port, password=creds.password or None, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            if not client.ping():
                raise NotReady("no PONG")
            loading = client.info("persistence").get("loading")
            if loading not in (0, "0"):
                raise NotReady("still loading its dataset")
        except redis.RedisError as exc:
            raise NotReady(str(exc) or type(exc).__name__) from None
        finally:
            client.close()

    def describe(self, service: str) -> str:
        return "PING"

    def load(self) -> None:
        import redis  # noqa: F401

    @property
    def http(self) -> None:
        return None


def memory_as_configured(ctx) -> str:
    """`mindscape check`: the running Redis has platform.yaml's maxmemory and eviction policy."""
    import redis

    settings, address = ctx.platform.services.redis, ctx.address("redis")
    client = redis.Redis(
        host=address.host,
        port=address.port,
        password=ctx.credentials("redis").password or None,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    try:
        found = client.config_get("maxmemory*")
    except redis.RedisError as exc:
        raise Failed(f"redis: {exc or type(exc).__name__}") from None
    finally:
        client.close()
    want = {"maxmemory": str(settings.maxmemory.bytes), "maxmemory-policy": settings.maxmemory_policy}
    as_configured(found, want)
    return f"maxmemory {settings.maxmemory} ({settings.maxmemory.bytes} bytes), policy {settings.maxmemory_policy}"


MEMORY_GATE = Gate(
    "services.redis_memory",
    memory_as_configured,
    "Redis runs with other values than deploy/redis/redis.conf (changed at runtime by CONFIG SET): restart "
    "its container to read the file again, and find who changed it",
)


def backup_hooks():
    """BGSAVE and the RDB through the engine's archive API, in redis_backup.py (loaded when used)."""
    from mindscape_ops.services import redis_backup

    return redis_backup


SERVICE = ServiceDef(
    name="redis",
    summary="the caching layer",
    settings=Redis,
    container=container,
    probe=Ping(),
    secrets=("REDIS_PASSWORD",),
    artifacts=(Artifact("redis/redis.conf.j2", deploy("redis/redis.conf")),),
    holds_data=True,
    credentials=credentials,
    prepare=write_users_acl,
    gates=(MEMORY_GATE,),
    backup=backup_hooks,
    kubernetes=KubeShape(
        workload="StatefulSet", run_as=999, cpu=("100m", "500m"), memory=("128Mi", "512Mi"), clients=True
    ),
)
