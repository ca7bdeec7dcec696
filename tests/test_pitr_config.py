"""backups.pitr: the model, its refusals, and what it makes of the database's container and
pgBackRest's configuration. Pure: no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindscape_ops.adapters.backup_key import derived_pass
from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError
from mindscape_ops.services import pitr, pitr_alerts
from mindscape_ops.services.spec import container_specs
from mindscape_ops.workspace.project import open_project

HEAD = "version: 1\nproject: shop\nservices:\n  postgres: {}\n"
KEY = "11" * 32


def platform_of(tmp_path: Path, text: str):
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return load([path], env={}).platform


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load([path], env={})
    return caught.value.problems


def test_off_by_default_and_nothing_changes(tmp_path):
    platform = platform_of(tmp_path, HEAD)
    assert platform.backups.pitr.enabled is False
    spec = container_specs(platform)["postgres"]
    assert not any("archive" in arg for arg in spec.command)
    assert [m.target for m in spec.mounts if m.target.startswith("/etc/pgbackrest")] == []


def test_on_archives_through_pgbackrest(tmp_path):
    platform = platform_of(tmp_path, HEAD + "backups:\n  pitr: {enabled: true, archive_timeout: 30s}\n")
    command = container_specs(platform)["postgres"].command
    assert "archive_mode=on" in command
    assert "archive_command=pgbackrest --stanza=shop archive-push %p" in command
    assert "archive_timeout=30" in command
    mounts = {m.target: m for m in container_specs(platform)["postgres"].mounts}
    assert mounts["/etc/pgbackrest"].read_only and mounts["/etc/pgbackrest"].source == ".mindscape/pgbackrest"
    repo = mounts["/var/lib/pgbackrest"]
    assert repo.source == "backups/pitr" and not repo.read_only and repo.live


def test_defaults_and_settings(tmp_path):
    pitr_ = platform_of(tmp_path, HEAD + "backups:\n  pitr: {enabled: true}\n").backups.pitr
    assert (pitr_.repository, pitr_.prefix, pitr_.keep_full, pitr_.compression) == ("local", "pitr", 2, "zst")
    assert (pitr_.full_schedule, pitr_.diff_schedule, pitr_.archive_timeout.seconds) == ("0 2 * * 0", "0 2 * * 1-6", 60)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("pitr: {enabled: true, repository: s3}", "backups: pitr.repository: s3 needs backups.s3"),
        ("pitr: {enabled: true, keep_full: 0}", "backups.pitr.keep_full"),
        ("pitr: {enabled: true, compression: xz}", "backups.pitr.compression"),
        ("pitr: {enabled: true, archive_timeout: 2d}", "archive_timeout: between 1s and 1d"),
        ("pitr: {enabled: true, full_schedule: 'every day'}", "backups.pitr.full_schedule"),
        ("pitr: {enabled: true, prefix: '../up'}", "backups.pitr.prefix"),
        ("pitr: {enabled: true, stanza: x}", "backups.pitr.stanza"),
    ],
)
def test_bad_settings_are_refused_by_path(tmp_path, body, says):
    problems = problems_of(tmp_path, HEAD + "backups:\n  " + body + "\n")
    assert any(says in problem for problem in problems), problems


def test_needs_the_database(tmp_path):
    problems = problems_of(
        tmp_path, "version: 1\nproject: shop\nservices:\n  redis: {}\nbackups:\n  pitr: {enabled: true}\n"
    )
    assert any("backups.pitr.enabled: archives the WAL of services.postgres" in p for p in problems), problems


def test_archive_settings_by_hand_are_refused_while_pitr_is_on(tmp_path):
    settings = "services:\n  postgres: {settings: {archive_mode: 'on'}}\n"
    text = "version: 1\nproject: shop\n" + settings
    assert platform_of(tmp_path, text).services.postgres.settings == {"archive_mode": "on"}  # off: as before
    problems = problems_of(tmp_path, text + "backups:\n  pitr: {enabled: true}\n")
    assert any("services.postgres.settings.archive_mode: set by backups.pitr" in p for p in problems), problems


def test_kubernetes_refuses_a_local_repository_at_its_line(tmp_path):
    """A folder on this machine cannot be shared by the cluster's pods: said at the repository's
    line, with what to write instead; S3 is accepted (test_kubernetes_pitr renders it)."""
    text = HEAD + "kubernetes: {}\nbackups:\n  pitr:\n    enabled: true\n    repository: local\n"
    problems = problems_of(tmp_path, text)
    assert any("platform.yaml:9:17: backups.pitr.repository: a local repository" in p for p in problems), problems
    assert any("use `repository: s3`" in p for p in problems), problems
    problems = problems_of(tmp_path, HEAD + "kubernetes: {}\nbackups:\n  pitr: {enabled: true}\n")  # the default
    assert any("backups.pitr.repository: a local repository (the default)" in p for p in problems), problems
    s3 = "  s3: {bucket: bkt, region: eu-west-1}\n"
    text = HEAD + "kubernetes: {}\nbackups:\n" + s3 + "  pitr: {enabled: true, repository: s3}\n"
    assert platform_of(tmp_path, text).backups.pitr.enabled
    assert platform_of(tmp_path, HEAD + "kubernetes: {}\n").kubernetes is not None  # off: as before


def test_local_repository_conf(tmp_path):
    platform = platform_of(tmp_path, HEAD + "backups:\n  local: {dir: safe}\n  pitr: {enabled: true, keep_full: 3}\n")
    conf = pitr.conf_text(platform)
    assert "repo1-path=/var/lib/pgbackrest" in conf and "repo1-retention-full=3" in conf
    assert "[shop]\npg1-path=/var/lib/postgresql/data/pgdata" in conf and "pg1-user=app" in conf
    assert "cipher" not in conf and "repo1-type" not in conf
    assert pitr.local_repository(platform) == "safe/pitr"


def test_s3_repository_conf_on_a_local_endpoint(tmp_path):
    s3 = "  s3: {bucket: bkt, prefix: team/, endpoint_url: 'https://127.0.0.1:9000'}\n"
    platform = platform_of(tmp_path, HEAD + "backups:\n" + s3 + "  pitr: {enabled: true, repository: s3}\n")
    conf = pitr.conf_text(platform)
    for line in ("repo1-type=s3", "repo1-path=/team/pitr", "repo1-s3-bucket=bkt", "repo1-s3-uri-style=path"):
        assert line in conf.splitlines()
    assert "repo1-s3-endpoint=host.docker.internal" in conf and "repo1-storage-port=9000" in conf
    assert "repo1-storage-verify-tls=n" in conf
    assert container_specs(platform)["postgres"].reach_host  # host.docker.internal resolves in it
    assert not [m for m in container_specs(platform)["postgres"].mounts if m.target == "/var/lib/pgbackrest"]


def test_an_s3_endpoint_without_tls_is_refused_for_pgbackrest(tmp_path):
    s3 = "  s3: {bucket: bkt, endpoint_url: 'http://127.0.0.1:9000'}\n"
    problems = problems_of(tmp_path, HEAD + "backups:\n" + s3 + "  pitr: {enabled: true, repository: s3}\n")
    assert any("backups.s3.endpoint_url: pgBackRest (2.45) reaches S3 over TLS only" in p for p in problems), problems
    assert platform_of(tmp_path, HEAD + "backups:\n" + s3).backups.s3 is not None  # dumps only: as before


def test_s3_repository_on_aws_verifies_tls(tmp_path):
    s3 = "  s3: {bucket: bkt, region: eu-west-1}\n"
    platform = platform_of(tmp_path, HEAD + "backups:\n" + s3 + "  pitr: {enabled: true, repository: s3}\n")
    conf = pitr.conf_text(platform)
    assert "repo1-s3-endpoint=s3.eu-west-1.amazonaws.com" in conf and "verify-tls" not in conf
    assert not container_specs(platform)["postgres"].reach_host


def test_secrets_go_to_their_own_file_only(tmp_path, monkeypatch):
    (tmp_path / "key").write_text(KEY)
    (tmp_path / "key").chmod(0o600)
    encryption = "  encryption: {key_file: key}\n"
    (tmp_path / "platform.yaml").write_text(HEAD + "backups:\n" + encryption + "  pitr: {enabled: true}\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    monkeypatch.chdir(tmp_path)
    project = open_project(None)
    pitr.prepare(project)
    conf = (tmp_path / ".mindscape/pgbackrest/pgbackrest.conf").read_text()
    secret = tmp_path / ".mindscape/pgbackrest/conf.d/secrets.conf"
    expected = derived_pass(bytes.fromhex(KEY), "pgbackrest repo1")
    text = secret.read_text()
    assert f"repo1-cipher-pass={expected}" in text and "repo1-cipher-type=aes-256-cbc" in text
    assert "repo1-s3-key-secret=s3cr3t-value" in secret.read_text()
    assert KEY not in secret.read_text() and expected not in conf and "s3cr3t" not in conf
    assert (tmp_path / "backups/pitr").is_dir()
    assert secret.stat().st_mode & 0o777 == 0o644  # the container's postgres user reads it ...
    assert (tmp_path / ".mindscape").stat().st_mode & 0o077 == 0  # ... in a folder only this user enters


def test_derived_pass_is_one_way_and_per_purpose():
    key = bytes.fromhex(KEY)
    assert derived_pass(key, "a") != derived_pass(key, "b") and KEY not in derived_pass(key, "a")
    assert derived_pass(key, "a") == derived_pass(key, "a") and len(derived_pass(key, "a")) == 64


def test_an_image_without_pgbackrest_is_said_at_up(tmp_path, monkeypatch):
    from mindscape_ops.adapters import docker as adapter
    from mindscape_ops.errors import OperationFailed

    class Output(list):
        exit_code, stderr = 127, b"sh: 1: pgbackrest: not found"

    class NoPgbackrest:
        def exec_output(self, container, argv, user=""):
            return Output([b""])

    monkeypatch.setattr(adapter, "Engine", NoPgbackrest)
    (tmp_path / "platform.yaml").write_text(HEAD + "backups:\n  pitr: {enabled: true}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OperationFailed) as refused:
        pitr.create_stanza(open_project(None))
    assert "the image of shop-postgres has no pgbackrest" in refused.value.message
    assert "mindscape images build postgres" in refused.value.hint


MONITORED = (
    "version: 1\nproject: shop\nservices:\n  postgres: {}\n  prometheus: {}\n  postgres_exporter: {}\n"
    "  node_exporter: {}\n"
)


def test_alerts_exist_only_with_pitr_and_where_their_metrics_are_scraped(tmp_path):
    assert pitr_alerts.alerts(platform_of(tmp_path, MONITORED)).alerts == ()
    on = platform_of(tmp_path, MONITORED + "backups:\n  pitr: {enabled: true, archive_timeout: 30s}\n")
    alerts = {a.name: a for a in pitr_alerts.alerts(on).alerts}
    assert set(alerts) == {
        "PostgresArchivingFailing",
        "PostgresArchiveLag",
        "PostgresFullBackupMissing",
        "PostgresRestorableWindowShort",
    }
    assert alerts["PostgresArchiveLag"].expr.endswith("pg_archiver_last_archived_age_seconds > 120")
    week = 7 * 86400 + 2 * 3600  # the weekly full schedule's longest gap, plus two hours
    assert alerts["PostgresFullBackupMissing"].expr == f"time() - {pitr_alerts.FULL_BACKUP_METRIC} > {week}"
    bare = platform_of(tmp_path, HEAD + "backups:\n  pitr: {enabled: true}\n")
    assert pitr_alerts.alerts(bare).alerts == ()  # nothing scrapes them: no rule that would never fire


def test_rendered_rules_query_and_runbook(tmp_path):
    from mindscape_ops.render.artifacts import render_files

    files = render_files(platform_of(tmp_path, MONITORED + "backups:\n  pitr: {enabled: true}\n"))
    rules = next(text for path, text in files.items() if path.endswith("rules/services.yml"))
    assert 'alert: "PostgresArchivingFailing"' in rules and "pg_archiver_failing == 1" in rules
    queries = next(text for path, text in files.items() if path.endswith("postgres_exporter/queries.yaml"))
    assert "pg_archiver:" in queries and "FROM pg_stat_archiver" in queries
    runbook = next(text for path, text in files.items() if path.endswith("backup-and-restore.md"))
    assert "## Restore to a point in time" in runbook
    assert "mindscape backup restore --to '2026-12-06 10:15:00+00' --yes" in runbook
    off = render_files(platform_of(tmp_path, MONITORED))
    assert not any("pg_archiver" in text or "point in time" in text for text in off.values())


@pytest.mark.parametrize(
    ("said", "means"),
    [
        ("ERROR: [095]: unable to load info file '/x/archive.info': CryptoError: cipher header invalid", "not the one"),
        ("ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/shop-backup.lock'", "holds the stanza's lock"),
    ],
)
def test_known_pgbackrest_errors_are_said_plainly(said, means):
    known = pitr.explain(said)
    assert known is not None and means in known[0]
    assert pitr.explain("ERROR: [056]: unable to find primary cluster") is None
