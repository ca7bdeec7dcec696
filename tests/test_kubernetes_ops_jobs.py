"""The Kubernetes ops Jobs (migrate, check) and the backup CronJob: what they run, with which
image and which Secret keys, and when they are left out."""

from __future__ import annotations

import re

import pytest

from .kubernetes_support import base_objects, by_kind, full_data, minimal_data, platform_of


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return platform_of(tmp_path_factory.mktemp("full"), full_data())  # the Jobs read no storage setting


def test_ops_jobs_and_the_backup_cronjob(full):
    objects = base_objects(full)
    jobs = {job["metadata"]["labels"]["mindscape.io/ops"]: job for job in by_kind(objects, "Job").values()}
    assert set(jobs) == {"migrate", "check"}
    assert re.fullmatch(r"migrate-[0-9a-f]{10}", jobs["migrate"]["metadata"]["name"])
    migrate = jobs["migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert migrate["args"] == ["migrate", "up"]
    env = {e["name"]: e for e in migrate["env"]}
    assert "$(POSTGRES_PASSWORD)@postgres:5432" in env[full.database.url_env]["value"]
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    (cron,) = by_kind(objects, "CronJob").values()
    assert cron["spec"]["schedule"] == full.backups.schedule
    backup = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert backup["args"] == ["backup", "create", "--service", "postgres"]
    assert backup["image"] == full.kubernetes.ops_image
    names = {e["name"] for e in backup["env"]}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", full.database.url_env} <= names


def test_a_new_ops_image_is_a_new_job(tmp_path):
    """A Job's template is immutable: another image gives another Job name, so apply never fails."""
    names = []
    for image in ("registry.local/shop-ops:1.0", "registry.local/shop-ops:1.1"):
        objects = base_objects(platform_of(tmp_path / image.rsplit(":", 1)[1], full_data(ops_image=image)))
        names.append(sorted(by_kind(objects, "Job")))
    assert len(set(names[0]) | set(names[1])) == 4


def test_without_s3_no_backup_cronjob_and_without_postgres_no_migrate(tmp_path):
    data = minimal_data()
    data["services"] = {"redis": {}}
    objects = base_objects(platform_of(tmp_path, data))
    jobs = [job["metadata"]["labels"]["mindscape.io/ops"] for job in by_kind(objects, "Job").values()]
    assert jobs == ["check"] and not by_kind(objects, "CronJob")


def test_the_backup_cronjob_gets_the_encryption_key_from_the_secret(tmp_path):
    data = full_data()
    data["backups"]["encryption"] = {"key_env": "BACKUP_KEY"}
    (cron,) = by_kind(base_objects(platform_of(tmp_path, data)), "CronJob").values()
    env = {e["name"]: e for e in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BACKUP_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "BACKUP_KEY"
