"""The faults an adversarial run found in backups (issue 22), engine-free: what a store holds
belongs to one project, a manifest is trusted only when it validates and names its own file,
a malformed DATABASE_URL never shows its password, a key file is checked like ssh checks one,
and a read error or another key is no verdict on a backup."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mindscape_ops.backup.model import Damaged, Manifest, Verification, check_id

from .conftest import run_cli

NOW = datetime.now(UTC)


def manifest_for(project: str, data: bytes, age: timedelta = timedelta(0), service: str = "postgres", **extra):
    created = NOW - age
    backup_id = f"{created:%Y%m%dT%H%M%SZ}-{service}-{os.urandom(2).hex()}"
    fields = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "pg_dump-custom",
        "server_version": "16",
        "source": "container",
        **extra,
    }
    return Manifest(backup_id, service, project, created.isoformat(timespec="seconds"), **fields)


def put_backup(folder: Path, project: str, age: timedelta = timedelta(0), data: bytes = b"data", **extra) -> str:
    """A complete backup of `project` written as mindscape writes one into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = manifest_for(project, data, age, **extra)
    (folder / f"{manifest.id}.backup").write_bytes(data)
    (folder / f"{manifest.id}.manifest.json").write_bytes(manifest.to_json())
    return manifest.id


def platform(directory: Path, project: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "platform.yaml").write_text(f"version: 1\nproject: {project}\nservices: {{postgres: {{}}}}\n{extra}")
    return directory


def listed(directory: Path, *args: str) -> list[str]:
    result = run_cli("backup", "list", "--json", *args, cwd=directory)
    assert result.returncode == 0, result.stderr
    return [b["id"] for b in json.loads(result.stdout)]


# -- a manifest's id is the id of its file ----------------------------------------------------


def test_a_manifest_naming_another_id_or_a_path_is_damaged_never_trusted(tmp_path):
    directory = platform(tmp_path / "p", "ids", "backups: {retention: {keep_last: 1, max_age: null}}\n")
    space = directory / "backups" / "ids"
    newest = put_backup(space, "ids")
    older = put_backup(space, "ids", timedelta(days=2))
    # a manifest whose id is a path, in a file of a valid id
    hostile = manifest_for("ids", b"data", timedelta(days=1))
    raw = json.loads(hostile.to_json())
    raw["id"] = "../../../x"
    (space / f"{hostile.id}.manifest.json").write_text(json.dumps(raw))
    (space / f"{hostile.id}.backup").write_bytes(b"data")
    # the newest manifest copied under an older, valid id
    copy_id = f"{NOW - timedelta(days=3):%Y%m%dT%H%M%SZ}-postgres-beef"
    (space / f"{copy_id}.manifest.json").write_bytes((space / f"{newest}.manifest.json").read_bytes())
    # and under a name that is no manifest's
    (space / f"{newest}.copy.manifest.json").write_bytes((space / f"{newest}.manifest.json").read_bytes())

    result = run_cli("backup", "list", "--json", cwd=directory)
    assert [b["id"] for b in json.loads(result.stdout)] == [newest, older]  # each backup once
    assert f"backups/ids/{hostile.id}.manifest.json is damaged" in result.stderr
    assert f"backups/ids/{copy_id}.manifest.json is damaged (it names backup '{newest}'" in result.stderr
    assert f"backups/ids/{newest}.copy.manifest.json is damaged" in result.stderr

    for command in (["verify", hostile.id], ["restore", hostile.id, "--yes"], ["verify", copy_id]):
        result = run_cli("backup", *command, cwd=directory)
        assert result.returncode == 1 and "is damaged" in result.stderr and "Traceback" not in result.stderr
    for bad in ("../../../x", "20260102T030405Z-postgres-1a2b/../../x"):
        for command in (["verify", bad], ["restore", bad, "--yes"]):
            result = run_cli("backup", *command, cwd=directory)
            assert result.returncode == 2 and "is not a backup id" in result.stderr
    assert not list(tmp_path.rglob("x.verify.json")) and not list(tmp_path.rglob("*.verify.json"))

    result = run_cli("backup", "prune", cwd=directory)
    assert result.returncode == 0, result.stderr
    assert (space / f"{newest}.backup").exists() and (space / f"{newest}.manifest.json").exists()
    assert not (space / f"{older}.backup").exists()  # beyond keep_last 1: the real newest is kept
    assert (space / f"{hostile.id}.backup").exists()  # damaged: never pruned, its data may be wanted


# -- everything read back is validated like user input ----------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"[]", "Input should be"),
        (b"null", "Input should be"),
        (b'{"id": 3', "Invalid JSON"),
        ("created_at", "2026-01-02T03:04:05"),  # naive: no offset
        ("created_at", "yesterday"),
        ("size", "4"),
        ("tables", {"public.t": -1}),
        ("sha256", "not a digest"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_damaged_and_hides_no_other_backup(tmp_path, content, why):
    directory = platform(tmp_path, "shape", "backups: {retention: {keep_last: 1, max_age: null}}\n")
    space = directory / "backups" / "shape"
    good = put_backup(space, "shape")
    bad = manifest_for("shape", b"data", timedelta(days=1))
    if isinstance(content, bytes):
        raw = content
    else:
        fields = json.loads(bad.to_json())
        fields[content] = why
        raw = json.dumps(fields).encode()
    with pytest.raises(Damaged):
        Manifest.from_json(raw, bad.id)
    (space / f"{bad.id}.manifest.json").write_bytes(raw)
    (space / f"{bad.id}.backup").write_bytes(b"data")

    result = run_cli("backup", "list", "--json", cwd=directory)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert [b["id"] for b in json.loads(result.stdout)] == [good]
    assert f"warning: backup {bad.id} is not listed: backups/shape/{bad.id}.manifest.json is damaged" in result.stderr
    assert run_cli("backup", "list", cwd=directory).returncode == 0  # the table too (sizes, ages)
    pruned = run_cli("backup", "prune", "--dry-run", "--json", cwd=directory)
    assert pruned.returncode == 0 and json.loads(pruned.stdout)["kept"] == {good: "the newest"}, pruned.stderr


@pytest.mark.parametrize("content", [b"[]", b"null", b'{"ok": "yes"}', b'{"id": ', "wrong id"])
def test_a_damaged_verification_record_counts_as_never_verified(tmp_path, content):
    directory = platform(tmp_path, "rec")
    space = directory / "backups" / "rec"
    backup_id = put_backup(space, "rec")
    if content == "wrong id":
        other = f"{NOW:%Y%m%dT%H%M%SZ}-postgres-0000"
        content = Verification(other, NOW.isoformat(), True, "ok").to_json()
    (space / f"{backup_id}.verify.json").write_bytes(content)
    result = run_cli("backup", "list", "--json", cwd=directory)
    assert result.returncode == 0 and json.loads(result.stdout)[0]["verified"] is False, result.stderr
    assert f"backups/rec/{backup_id}.verify.json is damaged" in result.stderr


def test_a_key_file_others_may_read_is_refused_and_a_binary_one_is_a_clear_error(tmp_path):
    directory = platform(tmp_path, "keys", "backups: {encryption: {key_file: backup.key}}\n")
    key = directory / "backup.key"
    key.write_text(os.urandom(32).hex())
    key.chmod(0o644)
    result = run_cli("backup", "create", cwd=directory)
    assert result.returncode == 3 and "is readable by others (mode 0644)" in result.stderr, result.stderr
    assert f"chmod 600 {key}" in result.stderr and "Traceback" not in result.stderr
    key.write_bytes(b"\xff\xfe\x00binary" * 4)
    key.chmod(0o600)
    result = run_cli("backup", "create", cwd=directory)
    assert result.returncode == 2 and "is not text" in result.stderr and "Traceback" not in result.stderr


# -- a malformed DATABASE_URL never shows its password ----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw-SECRET@[::1:5432/db",
        "postgresql://u:pw%zz-SECRET@host/db",
        "postgresql://u:p@ss-SECRET@host/db",
        "host=x password=pw-SECRET port",
        "postgresql://u:pw?x%zz-SECRET@host/db",  # libpq keeps a '?' in the password
        "postgresql://u:pw/SECRET@host/db",  # libpq would read `u:pw` as host:port
    ],
)
def test_a_malformed_database_url_is_a_clear_error_without_its_password(tmp_path, url):
    directory = platform(tmp_path, "dsn")
    for command, code in ((["backup", "create"], 2), (["migrate", "status"], 2), (["check", "--only", "database"], 1)):
        result = run_cli(*command, cwd=directory, env={"DATABASE_URL": url})
        shown = result.stdout + result.stderr
        assert result.returncode == code, (command, shown)
        assert "SECRET" not in shown and "Traceback" not in shown, (command, shown)
        assert "$DATABASE_URL" in shown, (command, shown)
    assert "SECRET" not in (directory / ".mindscape" / "audit.log").read_text()


def test_a_connection_error_quoting_the_url_is_redacted():
    from mindscape_ops.provision.endpoints import redact

    text = 'invalid percent-encoded token: "pw%zz-x" in "postgresql://u:pw%zz-x@h/db"'
    assert redact(text, "postgresql://u:pw%zz-x@h/db") == 'invalid percent-encoded token: "***" in "***"'
    assert "s3cr3t" not in redact("password=s3cr3t rejected", "host=h password=s3cr3t")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw?x%zz-SECRET@h/db",
        "postgresql://u:pw#x SECRET@h/db",
        "postgresql://u:pw/SECRET@h:5432/db",
        "postgresql://u:pw?x@SECRET@h/db",  # libpq: password pw?x, host SECRET@h
    ],
)
def test_a_password_with_a_slash_question_or_hash_mark_never_reaches_the_message(url):
    from mindscape_ops.errors import UsageError
    from mindscape_ops.provision.endpoints import check_database_url

    with pytest.raises(UsageError) as raised:
        check_database_url(url, "DATABASE_URL")
    assert "SECRET" not in str(raised.value) and "$DATABASE_URL" in str(raised.value)


# -- a read error or another key is no verdict --------------------------------------------------


def test_verify_with_another_key_records_nothing(tmp_path):
    from mindscape_ops.backup import crypto

    directory = platform(tmp_path, "wk", "backups: {encryption: {key_env: BACKUP_KEY}}\n")
    made_with, configured = os.urandom(32), os.urandom(32)
    data = b"".join(crypto.encrypt([b"a dump"], made_with))
    space = directory / "backups" / "wk"
    backup_id = put_backup(
        space, "wk", data=data, encrypted=True, key_fingerprint=crypto.fingerprint(made_with), plain_size=6
    )
    result = run_cli("backup", "verify", backup_id, cwd=directory, env={"BACKUP_KEY": configured.hex()})
    assert result.returncode == 1 and "was encrypted with key" in result.stderr, result.stderr
    assert "not judged: nothing recorded" in result.stderr
    assert not (space / f"{backup_id}.verify.json").exists()
    assert json.loads(run_cli("backup", "list", "--json", cwd=directory).stdout)[0]["verification"] is None


def test_verify_with_a_read_error_records_nothing(tmp_path, monkeypatch):
    import errno

    from mindscape_ops.backup import actions, stores
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.workspace.project import open_project

    directory = platform(tmp_path, "io")
    backup_id = put_backup(directory / "backups" / "io", "io")

    class FailingDisk:
        def __init__(self, path, mode):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size):
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stores, "open", FailingDisk, raising=False)  # the store's own reads only
    with pytest.raises(OperationFailed, match="Input/output error.*not judged: nothing recorded"):
        actions.verify(open_project([directory / "platform.yaml"]), backup_id)
    assert not (directory / "backups" / "io" / f"{backup_id}.verify.json").exists()


def test_ids_from_the_user_are_checked():
    from mindscape_ops.errors import UsageError

    for bad in ("../x", "20260102T030405Z-postgres-1a2b.manifest", "20260102T030405Z-Postgres-1a2b"):
        with pytest.raises(UsageError):
            check_id(bad)


def test_a_create_cut_off_between_its_data_and_its_manifest_keeps_nothing(tmp_path, monkeypatch):
    import contextlib

    from mindscape_ops.backup import actions, stores
    from mindscape_ops.backup.context import Dump
    from mindscape_ops.workspace.project import open_project

    directory = platform(tmp_path, "cut")

    class Hooks:
        @contextlib.contextmanager
        def dump(self, ctx):
            yield Dump(iter([b"a dump"]), "pg_dump-custom", "16", "container")

    def interrupted(self, name, data):
        raise KeyboardInterrupt  # Ctrl-C as the manifest is written

    monkeypatch.setattr(actions, "_hooks", lambda service: Hooks())
    monkeypatch.setattr(stores.LocalStore, "write_small", interrupted)
    with pytest.raises(KeyboardInterrupt):
        actions.create(open_project([directory / "platform.yaml"]), "postgres")
    assert list((directory / "backups" / "cut").iterdir()) == []  # the data went with it


def test_two_projects_in_one_folder_keep_their_backups_apart(tmp_path):
    """Two platform files beside each other share `backups/`: each project has its own folder
    there, and a backup an earlier version left in `backups/` itself counts for the project its
    manifest names."""
    retention = "backups: {retention: {keep_last: 1, max_age: null}}\n"
    for project in ("shop", "blog"):
        (tmp_path / f"{project}.yaml").write_text(
            f"version: 1\nproject: {project}\nservices: {{postgres: {{}}}}\n{retention}"
        )
    folder = tmp_path / "backups"
    shop = [put_backup(folder / "shop", "shop", timedelta(days=d)) for d in (1, 3)]
    blog = [put_backup(folder / "blog", "blog", timedelta(days=d)) for d in (0, 2)]
    old_shop, old_blog = put_backup(folder, "shop", timedelta(days=5)), put_backup(folder, "blog", timedelta(days=4))
    (folder / "20200101T000000Z-postgres-dead.backup.partial").write_bytes(b"whose?")
    os.utime(folder / "20200101T000000Z-postgres-dead.backup.partial", (0, 0))

    def ids(project: str, *args: str) -> list[str]:
        result = run_cli("-f", f"{project}.yaml", "backup", "list", "--json", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return [b["id"] for b in json.loads(result.stdout)]

    assert ids("shop") == [*shop, old_shop] and ids("blog") == [*blog, old_blog]
    assert ids("shop", "--project", "blog") == [*blog, old_blog]
    result = run_cli("-f", "shop.yaml", "backup", "list", "--project", "../blog", cwd=tmp_path)
    assert result.returncode == 2 and "--project" in result.stderr and "Traceback" not in result.stderr
    before = {p.relative_to(folder) for p in folder.rglob("*")}
    assert run_cli("-f", "shop.yaml", "backup", "prune", cwd=tmp_path).returncode == 0
    gone = before - {p.relative_to(folder) for p in folder.rglob("*")}
    assert gone == {
        Path(where) / f"{backup_id}{suffix}"
        for where, backup_id in (("shop", shop[1]), (".", old_shop))
        for suffix in (".backup", ".manifest.json")
    }
    assert ids("blog") == [*blog, old_blog]


def test_one_bad_manifest_does_not_hide_the_good_backup_from_check(tmp_path):
    directory = platform(tmp_path, "gate", "backups: {services: [postgres]}\n")
    space = directory / "backups" / "gate"
    good = put_backup(space, "gate")
    (space / f"{good}.verify.json").write_bytes(Verification(good, NOW.isoformat(), True, "ok").to_json())
    (space / f"{NOW:%Y%m%dT%H%M%SZ}-postgres-ffff.manifest.json").write_text("[]")
    result = run_cli("check", "--only", "backups", "--json", cwd=directory)
    gates = {gate["id"]: gate for gate in json.loads(result.stdout)}
    assert gates["backups.fresh"]["status"] == "pass" and gates["backups.verified"]["status"] == "pass", gates
    assert "Traceback" not in result.stderr


def test_scratch_database_names_say_their_project_and_creator():
    from mindscape_ops.services import postgres_scratch as scratch

    name = scratch.scratch_name("verify", "a-project-name-of-forty-characters-long", pid=4194304, now=4102444800)
    assert len(name) <= 63 and name.startswith("mindscape_verify_a_project_name_of_forty__4194304_")
    found = scratch.parse(name)
    assert found is not None and (found.kind, found.pid, found.created.year) == ("verify", 4194304, 2100)
    names = [
        scratch.scratch_name("restore", "shop", pid=7),
        scratch.scratch_name("verify", "shop-eu", pid=7),  # another project, whose name starts alike
        "mindscape_replaced_1a2b3c4d",  # the live database a restore set aside: never a scratch one
        "mindscape_verify_1a2b3c4d",  # an earlier version's
        "shop",
    ]
    assert scratch.of_project(names, "shop") == [names[0]]
    assert scratch.of_project(names, "shop", but=names[0]) == []
    assert scratch.of_earlier_versions(names) == ["mindscape_verify_1a2b3c4d"]
