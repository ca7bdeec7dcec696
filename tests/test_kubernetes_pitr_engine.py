"""The pitr Job's and CronJob's commands on a real container: Postgres started as the rendered StatefulSet
runs it (its args, its environment, pgbackrest.conf from the ConfigMap's text, secrets.conf and
the password from what the secretGenerator reads), the local postgres image (it has pgBackRest)
in place of the derived one, S3 through moto over TLS on this machine. Then what the Job at
rollout and the CronJob exec in postgres-0, run the same way (`docker exec` as the container's
user, as the Kubernetes exec does): the Job waits for Postgres, creates the stanza and checks
archiving (twice: the second is a no-op); the CronJob takes a full backup; the WAL is archived
through the rendered archive_command. No cluster: the exec through the API (ServiceAccount,
Role) is not run here."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from .conftest import unique_project
from .test_pitr_engine import KEY
from .test_pitr_s3_engine import AWS, bucket_client, cli, moto_tls  # noqa: F401

pytestmark = pytest.mark.engine


def rendered(directory: Path, kind: str, name: str) -> dict:
    for path in (directory / "deploy" / "kubernetes" / "base").glob("*.yaml"):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
    raise AssertionError(f"{kind}/{name} not rendered")


def test_the_stanza_job_and_the_backup_where_the_statefulset_runs(tmp_path, docker_client, postgres_image, moto_tls):  # noqa: F811
    endpoint, _relay = moto_tls
    bucket = f"pitrk-{unique_project()}".lower()
    bucket_client(endpoint).create_bucket(Bucket=bucket)
    project = unique_project("pitrk")
    (tmp_path / "backup.key").write_text(KEY)
    (tmp_path / "backup.key").chmod(0o600)
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {postgres_image}}}\n"
        "kubernetes: {secrets: {source: generate}}\n"
        "backups:\n  encryption: {key_file: backup.key}\n"
        f"  s3: {{bucket: {bucket}, prefix: team/, endpoint_url: '{endpoint}'}}\n"
        "  pitr: {enabled: true, repository: s3, archive_timeout: 5s}\n"
    )
    made = cli(tmp_path, "render", "--target", "kubernetes")
    assert made.returncode == 0, made.stderr
    statefulset = rendered(tmp_path, "StatefulSet", "postgres")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"]}
    config, secret = mounts["/etc/pgbackrest"]["projected"]["sources"]
    config_map = rendered(tmp_path, "ConfigMap", config["configMap"]["name"])
    assert secret["secret"]["items"][0]["path"] == "conf.d/secrets.conf"
    material = tmp_path / "deploy" / "kubernetes" / "base"
    secrets = dict(line.split("=", 1) for line in (material / "secrets.env").read_text().splitlines() if line)

    # what the pod's volumes hold, as files the container's user may read
    conf, run = tmp_path / "conf", tmp_path / "run"
    conf_d = conf / "conf.d"
    for folder in (conf, conf_d, run):
        folder.mkdir()
        folder.chmod(0o755)
    tmp_path.chmod(0o755)
    (conf / "pgbackrest.conf").write_text(config_map["data"]["pgbackrest.conf"])
    (conf_d / "secrets.conf").write_text((material / "secret-files" / "pgbackrest-conf.d-secrets.conf").read_text())
    (run / "POSTGRES_PASSWORD").write_text(secrets["POSTGRES_PASSWORD"])
    for path in (conf / "pgbackrest.conf", conf_d / "secrets.conf", run / "POSTGRES_PASSWORD"):
        path.chmod(0o644)
    assert "repo1-cipher-pass=" in (conf_d / "secrets.conf").read_text()  # the Secret's file, not the ConfigMap
    environment = {e["name"]: e.get("value", "").replace("$$", "$") for e in container.get("env", []) if "value" in e}
    name = f"{project}-postgres-0"
    started = docker_client.containers.create(
        postgres_image,
        command=container["args"],
        name=name,
        environment=environment,
        extra_hosts={"host.docker.internal": "host-gateway"},
        volumes={
            str(conf): {"bind": "/etc/pgbackrest", "mode": "ro"},
            str(run): {"bind": "/run/secrets", "mode": "ro"},
        },
        labels={"io.mindscape.project": project},
    )
    try:
        started.start()
        # the Job at rollout, run as soon as the container is (the pod may still be in initdb):
        # it waits for Postgres itself, creates the stanza, and `check` proves archiving
        (job,) = [
            obj
            for path in (tmp_path / "deploy" / "kubernetes" / "base").glob("*.yaml")
            for obj in yaml.safe_load_all(path.read_text())
            if obj and obj["kind"] == "Job" and obj["metadata"]["labels"].get("mindscape.io/ops") == "pitr-stanza"
        ]
        job_args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert job_args[3:5] == ["postgres-0", container["name"]]
        once = [arg.replace("$$", "$") for arg in job_args[job_args.index("--") + 1 :]]  # as Kubernetes passes them
        ran = started.exec_run(once, user="postgres")
        assert ran.exit_code == 0, ran.output.decode()[-2000:]
        assert b"check command end: completed successfully" in ran.output, ran.output.decode()[-2000:]
        info = started.exec_run(["pgbackrest", f"--stanza={project}", "--output=json", "info"], user="postgres")
        (stanza,) = json.loads(info.output)
        assert stanza["status"]["code"] == 2 and stanza["backup"] == [], stanza  # the stanza, "no valid backups" yet
        assert stanza["archive"] and stanza["archive"][0]["max"], stanza  # the WAL `check` switched is there
        again = started.exec_run(once, user="postgres")  # the next rollout's Job: the stanza is left as it is
        assert again.exit_code == 0, again.output.decode()[-2000:]
        # the CronJob's command, as it execs it in postgres-0
        cron = rendered(tmp_path, "CronJob", "pitr-full")
        args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        argv = args[args.index("--") + 1 :]
        assert args[3:5] == ["postgres-0", container["name"]]
        ran = started.exec_run(argv, user="postgres")
        assert ran.exit_code == 0, ran.output.decode()[-2000:]
        info = started.exec_run(["pgbackrest", f"--stanza={project}", "--output=json", "info"], user="postgres")
        assert info.exit_code == 0, info.output.decode()[-2000:]
        (stanza,) = json.loads(info.output)
        assert [b["type"] for b in stanza["backup"]] == ["full"]
        # the rendered archive_command archives: segments go to the bucket, none failed since
        sql = (
            "SELECT archived_count, last_failed_time IS NULL OR last_archived_time > last_failed_time "
            "FROM pg_stat_archiver"
        )
        psql = ["psql", "-h", "/var/run/postgresql", "-U", "app", "-d", "app", "-XAtqc"]
        deadline = time.monotonic() + 60
        while True:
            counts = started.exec_run([*psql, sql], user="postgres").output.decode().strip()
            archived, since = counts.split("|")
            if int(archived) > 0 and since == "t":
                break
            assert time.monotonic() < deadline, counts
            time.sleep(1)
        again = started.exec_run(argv, user="postgres")  # the next run: the stanza exists, a second full one
        assert again.exit_code == 0, again.output.decode()[-2000:]
    finally:
        started.remove(force=True, v=True)
