"""Guards against bugs a developer would plant in the backup commands, engine-free: a local
store in a temporary folder, backups written through the store as `backup create` writes them,
and the service's restore step replaced by a recorder (nothing may reach it when the object
is wrong)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from mindscape_ops.backup import actions, crypto
from mindscape_ops.backup.model import DATA, MANIFEST, VERIFIED, Manifest, Verification, new_id
from mindscape_ops.backup.stores import open_store
from mindscape_ops.errors import OperationFailed
from mindscape_ops.services import postgres_backup
from mindscape_ops.workspace.project import open_project

PROJECT = "guards"
KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


def project_at(tmp_path, extra: str = ""):
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {PROJECT}\nservices: {{postgres: {{}}}}\n"
        f"backups: {{retention: {{keep_last: 1}}{extra}}}\n"
    )
    return open_project([tmp_path / "platform.yaml"])


def put_backup(project, age: timedelta, data: bytes = b"plain dump", key: bytes | None = None, **manifest) -> str:
    """One complete postgres backup in the project's store, made `age` ago."""
    created = datetime.now(UTC) - age
    backup_id = new_id("postgres", created)
    stored = b"".join(crypto.encrypt([data], key)) if key is not None else data
    store = open_store(project)
    store.upload(backup_id + DATA, [stored])
    fields = dict(
        id=backup_id,
        service="postgres",
        project=PROJECT,
        created_at=created.isoformat(timespec="seconds"),
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        format="pg_dump-custom",
        server_version="15",
        source="app",
        encrypted=key is not None,
        key_fingerprint=crypto.fingerprint(key) if key is not None else None,
        plain_size=len(data),
    )
    store.write_small(backup_id + MANIFEST, Manifest(**{**fields, **manifest}).to_json())
    return backup_id


def record_verification(project, backup_id: str, ok: bool) -> None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    detail = "tables match" if ok else "row counts differ: orders 3 != 4"
    open_store(project).write_small(backup_id + VERIFIED, Verification(backup_id, at, ok, detail).to_json())


@pytest.fixture
def restores(monkeypatch) -> list[str]:
    """Backup ids that reached the service's restore step (the live database)."""
    reached: list[str] = []

    def recorder(ctx, chunks, manifest, into):
        reached.append(manifest.id)
        for _ in chunks():
            pass
        return "app"

    monkeypatch.setattr(postgres_backup, "restore", recorder)
    return reached


def test_prune_never_counts_a_failed_verification_as_verified(tmp_path):
    project = project_at(tmp_path)
    newest = put_backup(project, timedelta(hours=1))
    failed = put_backup(project, timedelta(days=1))
    verified = put_backup(project, timedelta(days=2))
    record_verification(project, failed, ok=False)
    record_verification(project, verified, ok=True)

    pruned = actions.prune(project, dry_run=True)

    assert pruned.kept == {newest: "the newest", verified: "the newest verified"}
    assert set(pruned.removed) == {failed}


def test_restore_compares_the_sha256_before_anything_is_touched(tmp_path, restores):
    project = project_at(tmp_path)
    good = put_backup(project, timedelta(hours=1))
    same_size = put_backup(project, timedelta(hours=2), data=b"plain dump", sha256="0" * 64)
    assert actions.restore(project, good, None, confirm=lambda manifest: True).target == "app"

    with pytest.raises(OperationFailed) as refused:
        actions.restore(project, same_size, None, confirm=lambda manifest: True)

    assert "corrupt" in refused.value.message and same_size in refused.value.message
    assert restores == [good]  # the damaged one never reached the database


def test_a_wrong_key_is_named_by_both_fingerprints_before_decrypting(tmp_path, restores, monkeypatch):
    project = project_at(tmp_path, ", encryption: {key_env: GUARDS_BACKUP_KEY}")
    made_with_a = put_backup(project, timedelta(hours=1), key=KEY_A)
    monkeypatch.setenv("GUARDS_BACKUP_KEY", KEY_B.hex())

    with pytest.raises(crypto.WrongKey) as refused:
        actions.restore(project, made_with_a, None, confirm=lambda manifest: True)

    message = refused.value.message
    assert f"encrypted with key {crypto.fingerprint(KEY_A)}" in message
    assert f"the configured key is {crypto.fingerprint(KEY_B)}" in message and "nothing was touched" in message
    assert restores == []
    monkeypatch.setenv("GUARDS_BACKUP_KEY", KEY_A.hex())  # the right key restores it
    assert actions.restore(project, made_with_a, None, confirm=lambda manifest: True).target == "app"
    assert restores == [made_with_a]
