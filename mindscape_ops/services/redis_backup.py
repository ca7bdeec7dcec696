"""Redis backups: BGSAVE, wait until LASTSAVE moves, then the RDB file streamed out of the
container through the engine's archive API (a tar stream: its one member is passed on chunk
by chunk, never held whole).

Restore stops the container, puts the RDB in place and starts it again. With `appendonly yes`
Redis loads its AOF, not dump.rdb, at start (and with no AOF at all it starts EMPTY), so the
restore also writes a new AOF manifest whose base is the restored RDB (Redis 7's multi-part
AOF allows an RDB base). The bytes land under a staging name first; dump.rdb and the AOF base
are hard links to it made only after the whole stream arrived: a cut-off restore changes
neither, and the container is started again whatever happened.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import tarfile
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from mindscape_ops.adapters.chunks import Reader
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
from mindscape_ops.services.contract import BackupContext as Context
from mindscape_ops.services.contract import Checked, Chunks, Dump

log = logging.getLogger("mindscape")

if TYPE_CHECKING:
    import redis

    from mindscape_ops.backup.model import Manifest

FORMAT = "rdb"
SAVE_TIMEOUT_S = 3600.0
STAGING = ".mindscape-restore.rdb"


restores_beside = False  # one dataset per server: it replaces the live one


def refuses_into(name: str) -> str | None:
    return None  # no --into: it restores over the live dataset


def _client(ctx: Context) -> redis.Redis:
    import redis

    address = ctx.address("redis")
    password = ctx.project.workspace.read_secrets().get("REDIS_PASSWORD") or None
    return redis.Redis(host=address.host, port=address.port, password=password, socket_timeout=30)


@contextlib.contextmanager
def _talking(ctx: Context) -> Iterator[redis.Redis]:
    import redis

    client = _client(ctx)
    try:
        yield client
    except redis.ConnectionError as exc:
        raise EnvironmentUnusable(f"cannot reach redis: {exc}", "is it running? `mindscape up redis`") from None
    except redis.RedisError as exc:
        raise OperationFailed(f"redis refused: {exc}") from None
    finally:
        client.close()


def _setting(client: redis.Redis, name: str) -> str:
    value = client.config_get(name).get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def dump(ctx: Context) -> Iterator[Dump]:
    container = ctx.running_container("redis")
    with _talking(ctx) as client:
        before = int(client.lastsave().timestamp())
        while int(client.time()[0]) <= before:  # LASTSAVE counts seconds: let the clock pass it
            time.sleep(0.05)
        _bgsave(client)
        deadline = time.monotonic() + SAVE_TIMEOUT_S
        while int(client.lastsave().timestamp()) <= before:
            persistence = client.info("persistence")
            if persistence.get("rdb_last_bgsave_status") == "err" and not persistence.get("rdb_bgsave_in_progress"):
                raise OperationFailed("redis could not write its RDB (BGSAVE failed)", "see `mindscape logs redis`")
            if time.monotonic() > deadline:
                raise OperationFailed(f"redis' BGSAVE did not finish within {SAVE_TIMEOUT_S:g}s")
            time.sleep(0.1)
        path = posixpath.join(_setting(client, "dir"), _setting(client, "dbfilename"))
        version = str(client.info("server").get("redis_version", ""))
        estimate = int(client.info("memory").get("used_memory", 0)) or None
    chunks = _member(ctx.engine.get_archive(container, path), path)
    yield Dump(chunks, FORMAT, version, f"container {container}", estimate=estimate)


def _bgsave(client: redis.Redis) -> None:
    import redis

    for _ in range(600):  # a save already running may predate the latest writes: start our own
        try:
            client.bgsave()
            return
        except redis.ResponseError as exc:
            if "in progress" not in str(exc):
                raise
            time.sleep(0.5)
    raise OperationFailed("redis stayed busy with another save for 5 minutes")


def _member(tar_chunks: Iterable[bytes], path: str) -> Iterator[bytes]:
    with tarfile.open(fileobj=io.BufferedReader(Reader(tar_chunks), 1 << 20), mode="r|") as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                while chunk := handle.read(1 << 20):
                    yield chunk
                return
    raise OperationFailed(f"the engine's archive of {path} held no file")


def restore(ctx: Context, chunks: Chunks, manifest: Manifest, into: str | None) -> str:
    container = ctx.running_container("redis")
    with _talking(ctx) as client:
        directory, dbfilename = _setting(client, "dir"), _setting(client, "dbfilename")
        aof = _setting(client, "appendonly") == "yes"
        aof_dir, aof_name = _setting(client, "appenddirname") or "appendonlydir", _setting(client, "appendfilename")
    owner = _run(ctx, container, ["stat", "-c", "%u %g", directory]).split()
    uid, gid = int(owner[0]), int(owner[1])
    old_aof = _aof_files(ctx, container, posixpath.join(directory, aof_dir), aof_name) if aof else {}
    # Names of our own, and a sequence past the old ones: Redis opens its next incr file in
    # append mode, so a reused name would replay the old writes over the restored data.
    seq = max(old_aof.values(), default=0) + 1
    base, incr = f"{aof_name}.mindscape-{manifest.id}.base.rdb", f"{aof_name}.mindscape-{manifest.id}.incr.aof"
    links = [dbfilename, *([f"{aof_dir}/{base}"] if aof else [])]
    extra = (
        {
            f"{aof_dir}/{incr}": b"",
            f"{aof_dir}/{aof_name}.manifest": f"file {base} seq {seq} type b\nfile {incr} seq {seq} type i\n".encode(),
        }
        if aof
        else {}
    )
    tar = _tar(chunks(), manifest.plain_size, links, extra, aof_dir if aof else None, uid, gid)
    ctx.engine.stop(container, stop_timeout=60)
    try:
        ctx.engine.put_archive(container, directory, tar)
    finally:
        ctx.engine.start(container)
        _wait_ready(ctx)
    # Redis may name its new incr file as an old one was named: only what its manifest no
    # longer names is stale.
    live = set(_aof_files(ctx, container, posixpath.join(directory, aof_dir), aof_name)) if aof else set()
    stale = [posixpath.join(directory, aof_dir, name) for name in old_aof if name not in live]
    _run(ctx, container, ["rm", "-f", posixpath.join(directory, STAGING), *stale])
    return f"redis in {container} (restarted, ready)"


SCRATCH_PREFIX = "/tmp/mindscape-verify-"  # + creator's pid, time, backup id, ".rdb"


def scratch_file(backup_id: str, pid: int | None = None, now: float | None = None) -> str:
    return f"{SCRATCH_PREFIX}{pid or os.getpid()}-{int(now or time.time())}-{backup_id}.rdb"


def stale_scratch(listed: str, ours: str) -> list[str]:
    """Pure: the scratch files in `find`'s output other than `ours`. A verify runs under the
    project's lock, so another one's file was left by a verify killed midway (SIGKILL, a lost
    runner): as big as a backup, in the container's /tmp, that nothing else removes."""
    return [
        path
        for path in (line.strip() for line in listed.splitlines())
        if path.startswith(SCRATCH_PREFIX) and path.endswith(".rdb") and path != ours and "/" not in path[5:]
    ]


def _remove_stale(ctx: Context, container: str, ours: str) -> None:
    found = _run(ctx, container, ["find", "/tmp", "-maxdepth", "1", "-name", "mindscape-verify-*.rdb"])
    stale = stale_scratch(found, ours)
    if stale:
        _run(ctx, container, ["rm", "-f", *stale])
    for path in stale:
        log.warning(f"removed the scratch file {path} in {container}: left by a verify that ended without removing it")


def verify(ctx: Context, chunks: Chunks, manifest: Manifest) -> Checked:
    """Redis has no scratch database: the RDB is checked by redis-check-rdb inside the container
    (a scratch file in its /tmp; one a killed verify left is removed first, and said)."""
    container = ctx.running_container("redis")
    scratch = scratch_file(manifest.id)
    _remove_stale(ctx, container, scratch)
    uid, gid = (int(n) for n in _run(ctx, container, ["sh", "-c", "id -u; id -g"]).split())
    ctx.engine.put_archive(container, "/tmp", _tar(chunks(), manifest.plain_size, [], {}, None, uid, gid, scratch[5:]))
    try:
        output = ctx.engine.exec_output(container, ["redis-check-rdb", scratch])
        text = b"".join(output).decode("utf-8", "replace")
    finally:
        _run(ctx, container, ["rm", "-f", scratch])
    if output.exit_code != 0 or "RDB looks OK" not in text:
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        return Checked(False, f"redis-check-rdb rejects it: {last[0]}")
    keys = next((line.split("]")[-1].strip() for line in text.splitlines() if "keys read" in line), "")
    return Checked(True, f"redis-check-rdb: RDB looks OK ({keys})" if keys else "redis-check-rdb: RDB looks OK")


def _tar(
    data: Iterable[bytes],
    size: int,
    links: list[str],
    extra: dict[str, bytes],
    directory: str | None,
    uid: int,
    gid: int,
    name: str = STAGING,
) -> Iterator[bytes]:
    """A tar stream: `data` as `name`, then hard links to it, then small files."""

    def header(member: str, kind: bytes, length: int = 0, link: str = "", mode: int = 0o600) -> bytes:
        info = tarfile.TarInfo(member)
        info.type, info.size, info.linkname, info.mode = kind, length, link, mode
        info.uid, info.gid, info.mtime = uid, gid, int(time.time())
        return info.tobuf(format=tarfile.PAX_FORMAT)

    yield header(name, tarfile.REGTYPE, size)
    sent = 0
    for chunk in data:
        sent += len(chunk)
        yield chunk
    if sent != size:
        raise OperationFailed(f"the backup held {sent} bytes where its manifest says {size}")
    yield b"\0" * (-size % 512)
    if directory:
        yield header(directory, tarfile.DIRTYPE, mode=0o755)
    for link in links:
        yield header(link, tarfile.LNKTYPE, link=name)
    for member, content in extra.items():
        yield header(member, tarfile.REGTYPE, len(content)) + content + b"\0" * (-len(content) % 512)
    yield b"\0" * 1024


def _run(ctx: Context, container: str, cmd: list[str]) -> str:
    output = ctx.engine.exec_output(container, cmd)
    text = b"".join(output).decode("utf-8", "replace")
    if output.exit_code != 0:
        raise OperationFailed(f"{cmd[0]} failed in {container}: {output.stderr.decode('utf-8', 'replace').strip()}")
    return text


def _aof_files(ctx: Context, container: str, aof_dir: str, aof_name: str) -> dict[str, int]:
    """The files the current AOF manifest names, with their sequence numbers."""
    path = posixpath.join(aof_dir, f"{aof_name}.manifest")
    output = ctx.engine.exec_output(container, ["cat", path])
    text = b"".join(output).decode("utf-8", "replace")
    files = {}
    for line in text.splitlines():
        words = dict(zip(line.split()[::2], line.split()[1::2], strict=False))
        if "file" in words and "/" not in words["file"]:
            files[words["file"]] = int(words["seq"]) if words.get("seq", "").isdigit() else 0
    return files


def _wait_ready(ctx: Context) -> None:
    from mindscape_ops.services.contract import NotReady, Wait, wait_until_ready
    from mindscape_ops.services.redis import SERVICE as service

    address = ctx.address("redis")
    creds = service.credentials_for(ctx.project.platform, ctx.project.workspace.read_secrets())
    try:
        wait_until_ready(
            lambda: service.probe.check(address.host, address.port, creds), Wait(timeout=300, interval=0.5)
        )
    except NotReady as exc:
        raise OperationFailed(
            f"redis did not come back after the restore: {exc}", "see `mindscape logs redis`"
        ) from None
