"""backups.pitr on Kubernetes: the postgres StatefulSet archives its WAL through pgBackRest as on
Docker (pgbackrest.conf from a ConfigMap, its cipher pass and S3 keys from the Secret, by
reference), and CronJobs on full_schedule/diff_schedule exec the backup in postgres-0 with a
ServiceAccount allowed pods/exec on that pod only, reaching nothing but the Kubernetes API.
Engine-free: the rendered objects (kustomize and the strict schemas: test_kubernetes_tools)."""

from __future__ import annotations

import pytest

from mindscape_ops.render.kubernetes import cluster_warnings
from mindscape_ops.services import pitr

from .kubernetes_support import base_objects, by_kind, full_data, platform_of


def pitr_data(**pitr_settings) -> dict:
    data = full_data(secrets={"source": "generate"})
    data["backups"]["encryption"] = {"key_env": "PITR_TEST_KEY"}
    data["backups"]["pitr"] = {"enabled": True, "repository": "s3", **pitr_settings}
    return data


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    return platform_of(tmp_path_factory.mktemp("pitr"), pitr_data(full_schedule="15 1 * * 0", archive_timeout="45s"))


@pytest.fixture(scope="module")
def objects(platform):
    return base_objects(platform)


def postgres_pod(objects) -> dict:
    return by_kind(objects, "StatefulSet")["postgres"]["spec"]["template"]["spec"]


def test_postgres_archives_through_pgbackrest_with_the_derived_image(platform, objects):
    (container,) = postgres_pod(objects)["containers"]
    args = container["args"]
    assert args[0] == "postgres"
    for setting in (
        "wal_level=replica",
        "archive_mode=on",
        "archive_command=pgbackrest --stanza=fullshop archive-push %p",
        "archive_timeout=45",
    ):
        assert setting in args, args
    assert container["image"] == pitr.derived_image(platform)
    assert container["image"].startswith("mindscape-derived/postgres-pgbackrest:")


def test_pgbackrest_conf_from_a_configmap_and_its_secrets_from_the_secret(platform, objects):
    pod = postgres_pod(objects)
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # one projected volume (a mount inside a ConfigMap's read-only volume cannot be made)
    assert "/etc/pgbackrest/conf.d" not in mounts
    projected = volumes[mounts["/etc/pgbackrest"]["name"]]["projected"]
    conf, secret = (source for source in projected["sources"])
    conf = conf["configMap"]
    assert conf["items"] == [{"key": "pgbackrest.conf", "path": "pgbackrest.conf"}]
    text = by_kind(objects, "ConfigMap")[conf["name"]]["data"]["pgbackrest.conf"]
    assert text == pitr.conf_text(platform)
    for line in ("repo1-type=s3", "repo1-s3-bucket=shop-backups", "repo1-path=/mindscape/pitr", "[fullshop]"):
        assert line in text.splitlines(), text
    assert "cipher" not in text and "s3-key" not in text  # the secrets are not in the ConfigMap
    assert secret["secret"]["name"] == "fullshop-secrets"
    assert secret["secret"]["items"] == [{"key": "pgbackrest-conf.d-secrets.conf", "path": "conf.d/secrets.conf"}]
    assert projected["defaultMode"] == 0o440 and mounts["/etc/pgbackrest"]["readOnly"]
    # pgBackRest's lock folder and the socket it reaches Postgres by are writable
    assert not mounts["/tmp"]["readOnly"] and not mounts["/var/run/postgresql"]["readOnly"]
    assert "/var/lib/pgbackrest" not in mounts  # no local repository in a pod


def test_the_generator_takes_the_secret_file_from_mindscape(platform, objects):
    from mindscape_ops.render.kubernetes import base

    keys = base(platform, {}).keys
    assert keys.files["pgbackrest-conf.d-secrets.conf"] == ".mindscape/pgbackrest/conf.d/secrets.conf"


def test_cronjobs_on_the_schedules_of_platform_yaml(platform, objects):
    crons = by_kind(objects, "CronJob")
    assert crons["pitr-full"]["spec"]["schedule"] == "15 1 * * 0"  # full_schedule as written
    assert crons["pitr-diff"]["spec"]["schedule"] == platform.backups.pitr.diff_schedule
    for kind, cron in (("full", crons["pitr-full"]), ("diff", crons["pitr-diff"])):
        assert cron["spec"]["timeZone"] == "Etc/UTC" and cron["spec"]["concurrencyPolicy"] == "Forbid"
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == platform.kubernetes.ops_image
        assert container["command"] == ["python3"]
        exec_args = ["-m", "mindscape_ops.adapters.kubernetes", "exec", "postgres-0", "postgres", "--", "sh", "-c"]
        assert container["args"][:8] == exec_args
        script = container["args"][-1]
        assert script == (
            f"pgbackrest --stanza=fullshop stanza-create && pgbackrest --stanza=fullshop --type={kind} backup"
        )
        assert pod["serviceAccountName"] == "postgres-pod-exec" and pod["automountServiceAccountToken"] is True
        assert "env" not in container  # it reads no secret: pgBackRest's are in the postgres pod
        labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] != "postgres"  # not in the postgres Service, PDB or policy


def stanza_job(objects) -> dict:
    (job,) = [
        j for j in by_kind(objects, "Job").values() if j["metadata"]["labels"]["mindscape.io/ops"] == "pitr-stanza"
    ]
    return job


def test_a_job_at_rollout_creates_the_stanza_and_checks_archiving(platform, objects):
    """Nothing else creates the stanza at rollout: the Job execs in postgres-0 as the CronJobs
    do, waits for Postgres, creates the stanza and proves archiving with `pgbackrest check`."""
    import re

    job = stanza_job(objects)
    assert re.fullmatch(r"pitr-stanza-[0-9a-f]{10}", job["metadata"]["name"])
    spec = job["spec"]
    assert spec["backoffLimit"] == 6 and spec["activeDeadlineSeconds"] == 1800
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "postgres-pod-exec" and pod["automountServiceAccountToken"] is True
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == platform.kubernetes.ops_image and container["command"] == ["python3"]
    exec_args = ["-m", "mindscape_ops.adapters.kubernetes", "exec", "postgres-0", "postgres", "--", "sh", "-c"]
    assert container["args"][:8] == exec_args and len(container["args"]) == 9
    assert "$$((i+1))" in container["args"][-1]  # escaped: Kubernetes would expand $(...) otherwise
    script = container["args"][-1].replace("$$", "$")  # Kubernetes' escaping of $, undone as it does
    pg = platform.services.postgres
    assert script.startswith(
        f"i=0; until pg_isready -q -h 127.0.0.1 -U {pg.user} -d {pg.database}; do "
    )  # its healthcheck
    assert script.endswith("done; pgbackrest --stanza=fullshop stanza-create && pgbackrest --stanza=fullshop check")
    assert "$$" not in script and "$((i+1))" in script  # every $ was escaped, once
    # it reads no secret and mounts nothing but /tmp: pgBackRest's secrets are in the postgres pod
    assert "env" not in container and "envFrom" not in container
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert "secret" not in str(pod).lower()
    # the pod-exec NetworkPolicy (the API only) selects its pod; the postgres Service does not
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "pod-exec" and labels["app.kubernetes.io/name"] != "postgres"


def test_the_stanza_job_is_the_same_for_the_same_rollout_and_new_for_a_new_image(tmp_path, objects):
    """A Job's template cannot change: the same render applies as it is (no second run), a new
    ops image is a new Job (it runs again: stanza-create and check are idempotent)."""
    again = stanza_job(
        base_objects(platform_of(tmp_path / "same", pitr_data(full_schedule="15 1 * * 0", archive_timeout="45s")))
    )
    assert again["metadata"]["name"] == stanza_job(objects)["metadata"]["name"]
    data = pitr_data(full_schedule="15 1 * * 0", archive_timeout="45s")
    data["kubernetes"]["ops_image"] = "registry.local/shop-ops:9.9"
    other = stanza_job(base_objects(platform_of(tmp_path / "new", data)))
    assert other["metadata"]["name"] != stanza_job(objects)["metadata"]["name"]


def test_no_diff_schedule_no_diff_cronjob(tmp_path):
    objects = base_objects(platform_of(tmp_path, pitr_data(diff_schedule=None)))
    assert set(by_kind(objects, "CronJob")) == {"backup", "pitr-full"}


def test_the_role_allows_exec_into_postgres_0_only(objects):
    statefulset = by_kind(objects, "StatefulSet")["postgres"]
    (role,) = by_kind(objects, "Role").values()
    assert role["metadata"]["name"] == "postgres-pod-exec"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods/exec"],
            "resourceNames": [f"{statefulset['metadata']['name']}-0"],
            "verbs": ["create", "get"],
        }
    ]
    (binding,) = by_kind(objects, "RoleBinding").values()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "postgres-pod-exec"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "postgres-pod-exec"}]
    assert by_kind(objects, "ServiceAccount")["postgres-pod-exec"]["automountServiceAccountToken"] is False
    # the pod and container the CronJob execs in are the StatefulSet's
    cron = by_kind(objects, "CronJob")["pitr-full"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["containers"][0]["args"][3:5] == [f"{statefulset['metadata']['name']}-0", "postgres"]
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["name"] == "postgres"
    # so does the Job at rollout; no other workload gets a ServiceAccount token
    job = stanza_job(objects)
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][3:5] == cron["containers"][0]["args"][3:5]
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        for obj in by_kind(objects, kind).values():
            if obj is not job:
                assert obj["spec"]["template"]["spec"]["automountServiceAccountToken"] is False, obj["metadata"]["name"]


def test_network_policies_add_the_api_for_the_cronjobs_and_s3_for_postgres(objects):
    policies = by_kind(objects, "NetworkPolicy")
    exec_policy = policies["pod-exec"]["spec"]
    assert exec_policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "pod-exec"
    assert exec_policy["ingress"] == []
    assert exec_policy["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]
    postgres = policies["postgres"]["spec"]
    assert {"ports": [{"protocol": "TCP", "port": 443}]} in postgres["egress"]  # archive-push to S3
    # the exec goes through the API server: no new way into postgres
    sources = [peer for rule in postgres["ingress"] for peer in rule.get("from", [])]
    assert not [p for p in sources if "pod-exec" in str(p)]


def test_without_pitr_nothing_of_it(tmp_path):
    data = full_data(secrets={"source": "generate"})
    objects = base_objects(platform_of(tmp_path, data))
    assert set(by_kind(objects, "CronJob")) == {"backup"}
    assert {job["metadata"]["labels"]["mindscape.io/ops"] for job in by_kind(objects, "Job").values()} == {
        "migrate",
        "check",
    }
    assert not by_kind(objects, "Role") and "pod-exec" not in by_kind(objects, "NetworkPolicy")
    pod = postgres_pod(objects)
    assert "/etc/pgbackrest" not in {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"ports": [{"protocol": "TCP", "port": 443}]} not in by_kind(objects, "NetworkPolicy")["postgres"]["spec"][
        "egress"
    ]


def test_cluster_notes_say_to_build_and_push_the_image(platform):
    notes = [note for note in cluster_warnings(platform) if "backups.pitr" in note]
    assert any("deploy/postgres/Containerfile" in note and "push it" in note for note in notes), notes
    # the rollout creates the stanza: nothing to start by hand, a label to wait on
    assert not [note for note in notes if "kubectl create job" in note], notes
    assert any("job -l mindscape.io/ops=pitr-stanza" in note for note in notes), notes


def test_exec_module_usage_is_one_line_and_exit_2(capsys):
    from mindscape_ops.adapters.kubernetes import main

    assert main(["exec", "postgres-0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


class FakeSession:
    """What kubernetes.stream.stream returns for an exec: channels read as they come, the exit
    status once closed."""

    def __init__(self, chunks: list[tuple[str, str]], returncode: int | None) -> None:
        self.chunks, self._returncode, self.closed = list(chunks), returncode, False
        self.stdout, self.stderr = "", ""

    def is_open(self) -> bool:
        return bool(self.chunks)

    def update(self, timeout: float) -> None:
        channel, text = self.chunks.pop(0)
        setattr(self, channel, getattr(self, channel) + text)

    def peek_stdout(self) -> bool:
        return bool(self.stdout)

    def peek_stderr(self) -> bool:
        return bool(self.stderr)

    def read_stdout(self) -> str:
        text, self.stdout = self.stdout, ""
        return text

    def read_stderr(self) -> str:
        text, self.stderr = self.stderr, ""
        return text

    def close(self) -> None:
        self.closed = True

    @property
    def returncode(self) -> int | None:
        return self._returncode


@pytest.mark.parametrize("returncode", [0, 3, None])
def test_exec_in_pod_copies_the_output_and_returns_the_commands_status(tmp_path, monkeypatch, returncode):
    """The CronJob's process: this pod's namespace, the named pod and container, the command as
    given, its output copied, its exit status (none known: a failure)."""
    import io

    import kubernetes.stream
    from kubernetes import config

    from mindscape_ops.adapters import kubernetes as adapter

    (tmp_path / "namespace").write_text("fullshop-production\n")
    monkeypatch.setattr(adapter, "NAMESPACE_FILE", str(tmp_path / "namespace"))
    monkeypatch.setattr(config, "load_incluster_config", lambda: None)
    calls = []
    chunks = [("stdout", "INFO: backup start\n"), ("stderr", "WARN: x\n"), ("stdout", "end\n")]
    session = FakeSession(chunks, returncode)

    def stream(method, pod, namespace, **kwargs):
        calls.append((method.__name__, pod, namespace, kwargs))
        return session

    monkeypatch.setattr(kubernetes.stream, "stream", stream)
    out, err = io.StringIO(), io.StringIO()
    status = adapter.exec_in_pod("postgres-0", "postgres", ["sh", "-c", "pgbackrest backup"], out, err)
    assert status == (1 if returncode is None else returncode)
    ((method, pod, namespace, kwargs),) = calls
    assert (method, pod, namespace) == ("connect_get_namespaced_pod_exec", "postgres-0", "fullshop-production")
    assert kwargs["container"] == "postgres" and kwargs["command"] == ["sh", "-c", "pgbackrest backup"]
    assert kwargs["stdin"] is False and kwargs["tty"] is False
    assert out.getvalue() == "INFO: backup start\nend\n" and err.getvalue() == "WARN: x\n"
    assert session.closed
