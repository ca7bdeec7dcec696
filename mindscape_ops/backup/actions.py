"""The backup commands as library calls: create, list, restore, verify, prune."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mindscape_ops import __version__
from mindscape_ops.backup import crypto
from mindscape_ops.backup import metrics as backup_metrics
from mindscape_ops.backup.catalog import find, listing, owner_of
from mindscape_ops.backup.context import Context
from mindscape_ops.backup.model import DATA, MANIFEST, VERIFIED, Damaged, Manifest, Verification, id_of, new_id
from mindscape_ops.backup.streams import Progress, Tally, checked, corrupt, large_buffers_back_to_the_os
from mindscape_ops.errors import MindscapeError, OperationFailed, UsageError

log = logging.getLogger("mindscape")

if TYPE_CHECKING:
    from mindscape_ops.backup.stores import Store
    from mindscape_ops.services.backup_start import Early
    from mindscape_ops.services.contract import BackupHooks
    from mindscape_ops.workspace.project import Project

Echo = Callable[[str], None]


def backed_up() -> list[str]:
    """The services that have backup hooks, in start order."""
    from mindscape_ops.services.registry import SERVICES

    return [service.name for service in SERVICES if service.backup]


def _hooks(service: str) -> BackupHooks:
    from mindscape_ops.services.registry import BY_NAME

    definition = BY_NAME.get(service)
    if definition is None or definition.backup is None:
        raise UsageError(f"{service} has no backup", f"back up {' or '.join(backed_up())}")
    return definition.backup()


def restores_beside(service: str) -> bool:
    """Whether a backup of `service` can be restored beside the live data (--into)."""
    return _hooks(service).restores_beside


def _store(project: Project) -> Store:
    """This project's own space: where its backups are written."""
    from mindscape_ops.backup.stores import open_store

    return open_store(project)


def store_where(project: Project, owner: str | None = None) -> str:
    from mindscape_ops.backup.stores import open_store

    return open_store(project, owner_of(project, owner)).where


def services_to_back_up(project: Project, service: str | None) -> list[str]:
    chosen = project.platform.backup_services
    if service is None:
        if not chosen:
            raise UsageError(
                f"no service to back up: neither {' nor '.join(backed_up())} is enabled", "enable one under services:"
            )
        return chosen
    enabled = project.platform.services.enabled()
    if service not in enabled:
        raise UsageError(
            f"--service {service}: not an enabled service", f"back up one of: {', '.join(chosen) or 'none'}"
        )
    _hooks(service)
    return [service]


@dataclass
class Taking:
    """The backup `create` is taking, for whoever stops it: its id once chosen (before any of
    it is stored)."""

    service: str
    id: str | None = None


def create(
    project: Project,
    service: str,
    progress: Progress | None = None,
    ctx: Context | None = None,
    taking: Taking | None = None,
    early: Early | None = None,
) -> Manifest:
    """Take one backup: the service's stream through sha256 (and encryption) to the store,
    the object first, the manifest last. The manifest written is the commit point: stopped
    before it (a Ctrl-C, a failure), nothing of the backup is kept; `taken` says which. `early`:
    a dump started before the model was loaded (services/backup_start.py), taken over when it is
    the one the model would start, else stopped."""
    ctx = ctx or Context(project)
    taking = taking or Taking(service)
    large_buffers_back_to_the_os()
    started = time.monotonic()
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    backup_id = taking.id = new_id(service)
    store: Store | None = None
    try:
        # The dump first: it runs (pg_dump starts, its bytes wait in the stream) while the store
        # and the key are made ready; a store or key that fails ends it, with nothing stored.
        with contextlib.ExitStack() as stack:
            try:
                if early is not None and early.agrees(project, service):
                    stack.push(early.close)  # it ends as the usual dump would
                    dump = early.dump
                else:
                    if early is not None:
                        early.stop()
                    dump = stack.enter_context(_hooks(service).dump(ctx))
            except MindscapeError:
                # a broken store or key file is said first, as when they were checked first
                _store(project).check()
                crypto.key_for(project)
                raise
            store = _store(project)
            key = crypto.key_for(project)
            store.check()
            plain = Tally(progress, hashing=False)  # its size for the manifest; the stored bytes are hashed
            stored = Tally()
            chunks = plain.wrap(dump.chunks)
            if key is not None:
                chunks = crypto.encrypt(chunks, key)
            store.upload(backup_id + DATA, stored.wrap(chunks), dump.estimate)
        manifest = Manifest(
            id=backup_id,
            service=service,
            project=project.platform.project,
            created_at=created_at,
            size=stored.size,
            sha256=stored.sha256,
            format=dump.format,
            server_version=dump.server_version,
            source=dump.source,
            encrypted=key is not None,
            key_fingerprint=crypto.fingerprint(key) if key is not None else None,
            plain_size=plain.size,
            tables=dump.tables,
            duration_s=round(time.monotonic() - started, 3),
            tool=f"mindscape {__version__}",
        )
        store.write_small(backup_id + MANIFEST, manifest.to_json())
    except BaseException:
        # cut off before the commit (Ctrl-C while the dump was ending, the data renamed or the
        # manifest written): neither half is kept, the manifest going first
        if store is not None:
            store.delete(backup_id + MANIFEST)
            store.delete(backup_id + DATA)
        raise
    # for node_exporter's textfile collector (or Prometheus' recording rules): the BackupTooOld alert
    backup_metrics.record_success(project.root, service, time.time())
    recorded(project, ctx)
    return manifest


def recorded(project: Project, ctx: Context) -> None:
    """Each enabled service that reads the backup times hears of the new one (ServiceDef.backup_recorded)."""
    from mindscape_ops.services.registry import SERVICES

    enabled = project.platform.services.enabled()
    for service in SERVICES:
        if service.backup_recorded is not None and service.name in enabled:
            service.backup_recorded(ctx)


def taken(project: Project, taking: Taking) -> Manifest | None:
    """After `create` was stopped: the backup it was taking when its manifest had been written
    (whole and listed: kept, and counted as the service's last good backup), else None
    (nothing of it was kept)."""
    if taking.id is None:
        return None
    data = _store(project).read_small(taking.id + MANIFEST)
    if not data:
        return None
    try:
        manifest = Manifest.from_json(data, taking.id)
    except Damaged:
        return None
    backup_metrics.record_success(project.root, manifest.service, time.time())
    return manifest


def _opener(project: Project, store: Store, manifest: Manifest) -> Callable[[], Iterator[bytes]]:
    """Reads the backup's bytes, checked against the manifest as they pass (and decrypted)."""
    key = crypto.key_for(project) if manifest.encrypted else None
    if manifest.encrypted and key is None:
        raise UsageError(
            f"backup {manifest.id} is encrypted and no key is configured",
            "set backups.encryption in platform.yaml to the key it was made with",
        )

    def open_chunks() -> Iterator[bytes]:
        chunks = checked(store.read(manifest.id + DATA), manifest.size, manifest.sha256, f"backup {manifest.id}")
        return crypto.decrypt(chunks, key, f"backup {manifest.id}") if key is not None else chunks

    return open_chunks


def check_object(project: Project, store: Store, manifest: Manifest) -> None:
    """Read the whole object once, before anything is touched: size, sha256 (and, when
    encrypted, every chunk's authentication with the configured key)."""
    opener = _opener(project, store, manifest)
    tally = Tally()
    try:
        for _ in tally.wrap(store.read(manifest.id + DATA)):
            pass
    except FileNotFoundError:
        raise OperationFailed(
            f"backup {manifest.id} has a manifest but no data in {store.where}",
            "use another backup (`mindscape backup list`)",
        ) from None
    if tally.size != manifest.size or tally.sha256 != manifest.sha256:
        raise corrupt(f"backup {manifest.id}", manifest.size, manifest.sha256, tally.size, tally.sha256)
    if manifest.encrypted:
        key = crypto.key_for(project)
        if key is not None and manifest.key_fingerprint and crypto.fingerprint(key) != manifest.key_fingerprint:
            raise crypto.KeyMismatch(
                f"backup {manifest.id} was encrypted with key {manifest.key_fingerprint}, "
                f"the configured key is {crypto.fingerprint(key)}: nothing was touched",
                "configure the key it was made with (backups.encryption)",
            )
        for _ in opener():
            pass


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    target: str


def restore(
    project: Project,
    backup_id: str,
    into: str | None,
    confirm: Callable[[Manifest], bool],
    ctx: Context | None = None,
    owner: str | None = None,
) -> Restored:
    """Backup `backup_id` of this project (or of project `owner`, named on purpose) into its service."""
    if into is not None:  # not a name of a service's own scratch space: the next verify or restore may drop it
        for service in backed_up():
            hooks = _hooks(service)
            why = hooks.refuses_into(into) if hooks.restores_beside else None
            if why:
                raise UsageError(f"--into {into}: {why}", "name the new database otherwise")
    ctx = ctx or Context(project)
    found = find(project, backup_id, owner_of(project, owner))
    manifest, store = found.manifest, found.store
    if into is not None and not restores_beside(manifest.service):
        beside = " or ".join(name for name in backed_up() if restores_beside(name))
        raise UsageError(f"--into is for {beside} backups; {manifest.id} is a {manifest.service} backup")
    if into is None and not confirm(manifest):
        raise UsageError("restore cancelled: nothing was touched")
    check_object(project, store, manifest)
    target = _hooks(manifest.service).restore(ctx, _opener(project, store, manifest), manifest, into)
    return Restored(manifest, target)


def verify(project: Project, backup_id: str | None, ctx: Context | None = None) -> Verification:
    """Fetch, check, restore into scratch, compare with the manifest; the verdict is recorded
    beside the manifest (a failure too). What says nothing about the backup (the store could
    not be read, the configured key is another one) fails the command and records nothing."""
    from mindscape_ops.backup.stores import ReadFailed

    ctx = ctx or Context(project)
    found = find(project, backup_id)
    manifest, store = found.manifest, found.store
    try:
        check_object(project, store, manifest)
        result = _hooks(manifest.service).verify(ctx, _opener(project, store, manifest), manifest)
        ok, detail, tables, mismatches = result.ok, result.detail, result.tables, list(result.mismatches)
    except (ReadFailed, crypto.KeyMismatch) as exc:
        raise OperationFailed(
            f"{exc.message} (backup {manifest.id} was not judged: nothing recorded)", exc.hint
        ) from None
    except OperationFailed as exc:
        ok, detail, tables, mismatches = False, exc.message, None, []
    verification = Verification(
        id=manifest.id,
        verified_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ok=ok,
        detail=detail,
        tables=tables,
        mismatches=mismatches,
    )
    store.write_small(manifest.id + VERIFIED, verification.to_json())
    return verification


@dataclass(frozen=True)
class Pruned:
    removed: dict[str, str]  # backup id -> why
    kept: dict[str, str]
    leftovers: list[str]  # object names of incomplete backups
    aborted_uploads: list[str]
    dry_run: bool


def prune(project: Project, dry_run: bool, now: datetime | None = None) -> Pruned:
    """Apply `backups.retention`; remove leftovers of interrupted backups. A backup's manifest
    goes first: a prune cut short leaves leftovers (removed next time), never a listed backup
    without its data."""
    from mindscape_ops.backup import retention

    now = now or datetime.now(UTC)
    store = _store(project)
    settings = project.platform.backups.retention
    policy = retention.Policy(
        keep_last=settings.keep_last,
        max_age=timedelta(seconds=settings.max_age.seconds) if settings.max_age is not None else None,
        keep_daily=settings.keep_daily,
        keep_weekly=settings.keep_weekly,
        keep_monthly=settings.keep_monthly,
    )
    listed = listing(project)
    decision = retention.decide(
        [
            retention.Backup(
                i.manifest.id, i.manifest.service, i.manifest.created, bool(i.verification and i.verification.ok)
            )
            for i in listed
        ],
        policy,
        now,
    )
    # Leftovers only in the project's own space: in the shared one of older versions an object
    # without a manifest may be any project's.
    names = store.names()
    with_manifest = {id_of(name) for name in names if name.endswith(MANIFEST)}
    left = retention.leftovers(names, {i for i in with_manifest if i}, id_of, now)
    abort = getattr(store, "abort_stale_uploads", None)
    aborted: list[str] = abort(retention.LEFTOVER_GRACE, dry_run=dry_run) if abort is not None else []
    if not dry_run:
        where = {item.manifest.id: item.store for item in listed}
        present = {store.where: names}
        for backup_id in decision.remove:
            there = where[backup_id]
            if there.where not in present:
                present[there.where] = there.names()
            for suffix in (MANIFEST, DATA, VERIFIED):
                if backup_id + suffix in present[there.where]:
                    there.delete(backup_id + suffix)
        for name in left:
            store.delete(name)
    return Pruned(decision.remove, decision.keep, left, aborted, dry_run)
