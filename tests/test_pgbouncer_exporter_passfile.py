"""The pgbouncer exporter's password reaches it in a libpq password file, without an engine:
the file's line (escaped as libpq reads it), its mode and owner, the container spec (a path in
the environment, no password as a value), the compose export, and Kubernetes, where a Secret's
file cannot be given an owner and the pod reads PGPASSWORD by Secret reference instead."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mindscape_ops.provision.desired import run_as
from mindscape_ops.services import pgbouncer_exporter as exporter
from mindscape_ops.services.spec import container_specs
from mindscape_ops.workspace.project import open_project

PLATFORM = "version: 1\nproject: shop\nservices:\n  postgres: {}\n  pgbouncer: {}\n  pgbouncer_exporter: {}\n"


def project_of(tmp_path: Path, extra: str = ""):
    (tmp_path / "platform.yaml").write_text(PLATFORM + extra)
    return open_project([tmp_path / "platform.yaml"])


def test_the_line_escapes_what_libpq_reads_as_separators():
    assert exporter.passfile_text("app", "plain") == "pgbouncer:6432:pgbouncer:app:plain\n"
    assert exporter.passfile_text("app", "a:b\\c") == "pgbouncer:6432:pgbouncer:app:a\\:b\\\\c\n"


def test_the_spec_names_the_file_and_holds_no_password(tmp_path: Path):
    spec = container_specs(project_of(tmp_path).platform)["pgbouncer_exporter"]
    assert spec.secrets == {} and spec.secret_files == {}
    assert spec.environment == {"PGPASSFILE": "/run/secrets/pgbouncer_exporter.pgpass"}
    [mount] = spec.mounts
    assert (mount.source, mount.target, mount.read_only, mount.owner_only) == (
        ".mindscape/pgbouncer_exporter/pgpass",
        "/run/secrets/pgbouncer_exporter.pgpass",
        True,
        True,
    )
    assert not any("PASSWORD" in arg for arg in spec.command)


def test_up_writes_the_file_0600_for_the_user_the_exporter_runs_as(tmp_path: Path):
    project = project_of(tmp_path)
    exporter.write_passfile(project, {"POSTGRES_PASSWORD": "s3:cret"})
    path = tmp_path / exporter.PASSFILE
    found = path.stat()
    assert found.st_mode & 0o777 == 0o600
    assert (found.st_uid, found.st_gid) == exporter.owner()
    if os.geteuid() == 0:  # root gives it to the image's unprivileged user, never keeps it
        assert found.st_uid == exporter.NOBODY
    spec = container_specs(project.platform)["pgbouncer_exporter"]
    assert run_as(project, spec) == f"{found.st_uid}:{found.st_gid}" != "0:0"
    path.chmod(0o644)  # widened by hand: made 0600 again (libpq would ignore it)
    exporter.write_passfile(project, {"POSTGRES_PASSWORD": "s3:cret"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "pgbouncer:6432:pgbouncer:app:s3\\:cret\n"


def test_the_compose_export_has_no_password_variable_for_it(tmp_path: Path):
    from mindscape_ops.render import render_platform

    project = project_of(tmp_path)
    rendered = render_platform(project.platform, project.root)
    compose = yaml.safe_load(rendered["deploy/compose.yaml"].replace("$$", "$"))
    service = compose["services"]["pgbouncer_exporter"]
    assert service["environment"] == {"PGPASSFILE": "/run/secrets/pgbouncer_exporter.pgpass"}
    assert service["user"] == "65534:65534"


def test_on_kubernetes_the_pod_reads_it_by_secret_reference_with_no_file_mounted(tmp_path: Path):
    from mindscape_ops.render.kubernetes import base

    project = project_of(tmp_path, "kubernetes: {}\n")
    built = base(project.platform, {})
    [deployment] = [o for o in built.files["pgbouncer-exporter.yaml"] if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert "PGPASSFILE" not in env
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert not any("pgpass" in m["mountPath"] for m in container.get("volumeMounts", []))
    assert "POSTGRES_PASSWORD" in built.keys.values and not any("pgpass" in k for k in built.keys.files)


def test_the_new_mount_field_leaves_every_other_containers_hash_as_it_was(tmp_path: Path):
    """`owner_only` enters a spec's hash only where it is set: no other container is recreated
    by the upgrade that brought it."""
    import json

    specs = container_specs(project_of(tmp_path).platform)
    assert "owner_only" not in json.dumps(specs["pgbouncer"].hash_input())  # mounts without it
    assert json.loads(json.dumps(specs["pgbouncer_exporter"].hash_input()))["mounts"][0]["owner_only"] is True
