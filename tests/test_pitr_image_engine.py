"""The official postgres image has no pgBackRest: with backups.pitr, mindscape renders a build file
deriving it (deploy/postgres/Containerfile) and `up` builds it. No registry is reachable here, so
the official image stands in as a local one: the local postgres image with pgBackRest purged,
tagged `postgres:<unique tag>` (an official name). From it `up` builds the derived image (pgBackRest
installed again, from the image's apt sources), starts Postgres on it and creates the stanza,
which `pgbackrest check` proves by archiving a WAL segment; a full backup then records what the
repository holds in .mindscape/metrics. The rendered file is also built as the
brief of the issue asks, with BASE set to the local postgres image, and `pgbackrest version` run.

Not proven here: the install on the official image itself (its apt sources are the PostgreSQL
project's as well as Debian's; its pgBackRest version is theirs)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from mindscape_ops.images.actions import BUILD_HASH_LABEL

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def official_stand_in(docker_client, postgres_image):
    """`postgres:<unique tag>`: the local postgres image without pgBackRest."""
    tag = f"mindscape-test-{os.getpid()}"
    container = docker_client.containers.run(
        postgres_image, ["sh", "-c", "dpkg --purge pgbackrest && ! command -v pgbackrest"], user="root", detach=True
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()
        container.commit(repository="postgres", tag=tag)
    finally:
        container.remove(force=True)
    yield f"postgres:{tag}"
    for ref in (f"mindscape-derived/postgres-pgbackrest:{tag}", f"postgres:{tag}"):
        with contextlib.suppress(Exception):  # gone already
            docker_client.images.remove(ref, force=True)


def test_up_builds_the_derived_image_and_archives_through_it(tmp_path: Path, docker_client, official_stand_in):
    project = unique_project("pitrimg")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: '{official_stand_in}', port: auto}}\n"
        "backups:\n  pitr: {enabled: true, archive_timeout: 5s}\n"
    )
    derived = "mindscape-derived/postgres-pgbackrest:" + official_stand_in.split(":", 1)[1]
    try:
        done = run_cli("up", cwd=tmp_path, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        build_file = tmp_path / "deploy" / "postgres" / "Containerfile"
        assert f"ARG BASE={official_stand_in}" in build_file.read_text()
        image = docker_client.images.get(derived)
        assert image.labels[BUILD_HASH_LABEL]  # built from that file by `up`
        running = docker_client.containers.get(f"{project}-postgres")
        assert running.image.id == image.id
        version = running.exec_run(["pgbackrest", "version"], user="postgres")
        assert version.exit_code == 0 and version.output.startswith(b"pgBackRest "), version.output
        archived = running.exec_run(["pgbackrest", f"--stanza={project}", "check"], user="postgres")
        assert archived.exit_code == 0, archived.output
        # a second `up` builds nothing: the image carries the build file's digest
        again = run_cli("up", cwd=tmp_path, timeout=300)
        assert again.returncode == 0 and "building" not in again.stdout + again.stderr, again.stdout + again.stderr
        assert docker_client.images.get(derived).id == image.id
        # a full backup through it records what the repository holds, for the alerts on it
        made = run_cli("backup", "create", "--physical", cwd=tmp_path, timeout=600)
        assert made.returncode == 0, made.stdout + made.stderr
        metrics = tmp_path / ".mindscape" / "metrics"
        prom = (metrics / "mindscape_pitr.prom").read_text()
        assert "mindscape_pitr_backups 1\n" in prom
        for name in ("window_start", "last_full_backup", "archiving_since"):
            value = next(line for line in prom.splitlines() if line.startswith(f"mindscape_pitr_{name}_"))
            assert abs(float(value.split()[1]) - time.time()) < 900, value
        rules = (metrics / "mindscape_pitr.rules.yml").read_text()
        assert "record: mindscape_pitr_backups\n        expr: vector(1)" in rules
    finally:
        remove_project(docker_client, project)


def test_the_rendered_build_file_builds_on_the_local_postgres_image(tmp_path: Path, docker_client, postgres_image):
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: pitrfile\nservices: {postgres: {image: 'postgres:16'}}\n"
        "backups: {pitr: {enabled: true}}\n"
    )
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "deploy" / "postgres"
    tag = f"mindscape-test/pgbackrest-file:{os.getpid()}"
    try:
        docker_client.images.build(
            path=str(folder), dockerfile="Containerfile", tag=tag, buildargs={"BASE": postgres_image}, rm=True
        )
        said = docker_client.containers.run(tag, ["pgbackrest", "version"], user="postgres", remove=True)
        assert said.startswith(b"pgBackRest 2."), said
    finally:
        with contextlib.suppress(Exception):  # never built
            docker_client.images.remove(tag, force=True)
