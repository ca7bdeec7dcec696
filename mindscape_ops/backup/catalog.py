"""Which backups belong to a project: the manifests in its own space of the store, and those
in the space older versions shared between projects whose manifest names it.

A manifest is trusted only when it validates (model.Manifest), its id is the id of its file
name and its project is the project asked for; any other is damaged: said on stderr (naming
the file), never listed, pruned or restored. A backup of another project is read only when
that project is named (`--project`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mindscape_ops.backup.model import (
    MANIFEST,
    VERIFIED,
    Damaged,
    Listed,
    Manifest,
    Verification,
    check_id,
    manifest_id,
)
from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.settings.types import check_name

if TYPE_CHECKING:
    from mindscape_ops.backup.stores import Store
    from mindscape_ops.workspace.project import Project

log = logging.getLogger("mindscape")


def owner_of(project: Project, other: str | None) -> str:
    """The project whose backups are meant: this one, or `--project OTHER`."""
    if other is None:
        return project.platform.project
    try:
        return check_name(other)
    except ValueError as exc:
        raise UsageError(f"--project: {exc}", "name a project as its platform.yaml does (`project:`)") from None


def spaces(project: Project, owner: str) -> tuple[Store, Store]:
    """The owner's own space, then the shared one of older versions."""
    from mindscape_ops.backup.stores import legacy_store, open_store

    return open_store(project, owner), legacy_store(project)


def listing(project: Project, owner: str | None = None) -> list[Listed]:
    """Every complete backup of `owner` (default: this project), newest first."""
    owner = owner or project.platform.project
    own, shared = spaces(project, owner)
    found = {item.manifest.id: item for item in _read(own, owner, is_shared=False)}
    older = [item for item in _read(shared, owner, is_shared=True) if item.manifest.id not in found]
    if older:
        log.info(f"{len(older)} backup(s) of {owner} in {shared.where}, where earlier versions kept every project's")
    found.update({item.manifest.id: item for item in older})
    return newest_first(found.values())


def newest_first(items: Iterable[Listed]) -> list[Listed]:
    """Pure: by the moment each was taken (not the text of `created_at`, whose offset may be
    any), newest first."""
    return sorted(items, key=lambda item: (item.manifest.created, item.manifest.id), reverse=True)


def _read(store: Store, owner: str, is_shared: bool) -> list[Listed]:
    found = []
    for name in sorted(store.names()):
        if not name.endswith(MANIFEST):
            continue
        backup_id = manifest_id(name)
        if backup_id is None:
            log.warning(f"{store.where}{name} is damaged: a manifest is named <id>{MANIFEST}; it is not listed")
            continue
        raw = store.read_small(name)
        if raw is None:  # removed meanwhile
            continue
        try:
            manifest = Manifest.from_json(raw, backup_id)
        except Damaged as exc:
            # never offered for a restore, never pruned (its data may still be wanted), but said
            log.warning(
                f"backup {backup_id} is not listed: {store.where}{name} is damaged ({exc}); "
                "delete its files or repair it"
            )
            continue
        if manifest.project != owner:
            if not is_shared:  # in a project's own space, another project's manifest was put there
                log.warning(
                    f"backup {backup_id} is not listed: {store.where}{name} is damaged "
                    f"(it names project {manifest.project!r}, not {owner})"
                )
            continue
        found.append(Listed(manifest, verification_of(store, backup_id), store))
    return found


def verification_of(store: Store, backup_id: str) -> Verification | None:
    raw = store.read_small(backup_id + VERIFIED)
    if raw is None:
        return None
    try:
        return Verification.from_json(raw, backup_id)
    except Damaged as exc:
        log.warning(
            f"{store.where}{backup_id}{VERIFIED} is damaged ({exc}): backup {backup_id} counts as never verified"
        )
        return None


def find(project: Project, backup_id: str | None, owner: str | None = None) -> Listed:
    """Backup `backup_id` of `owner` (default: this project; no id: its newest backup)."""
    owner = owner or project.platform.project
    own, shared = spaces(project, owner)
    if backup_id is None:
        listed = listing(project, owner)
        if not listed:
            raise UsageError(f"no backups in {own.where}", "take one: `mindscape backup create`")
        return listed[0]
    check_id(backup_id)
    elsewhere = None
    for store in (own, shared):
        raw = store.read_small(backup_id + MANIFEST)
        if raw is None:
            continue
        try:
            manifest = Manifest.from_json(raw, backup_id)
        except Damaged as exc:
            raise _damaged(store, backup_id, str(exc)) from None
        if manifest.project == owner:
            return Listed(manifest, verification_of(store, backup_id), store)
        if store is own:
            raise _damaged(store, backup_id, f"it names project {manifest.project!r}, not {owner}")
        elsewhere = manifest.project
    raise UsageError(
        f"no backup {backup_id} of project {owner} in {own.where}",
        f"it is a backup of project {elsewhere}: name it with --project {elsewhere} (`backup list`, `backup restore`)"
        if elsewhere
        else "`mindscape backup list` shows the backups there",
    )


def _damaged(store: Store, backup_id: str, why: str) -> OperationFailed:
    return OperationFailed(
        f"the manifest of backup {backup_id} ({store.where}{backup_id}{MANIFEST}) is damaged ({why}): "
        "it cannot be trusted",
        "use another backup (`mindscape backup list`)",
    )
