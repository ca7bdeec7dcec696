"""The operations as cluster objects, run by the ops image (mindscape with this project in
/project): `migrate up` as a Job a pipeline waits on before it rolls out the application,
`check` as a Job, and `backup create` of Postgres to S3 as a CronJob on backups.schedule. They
reach Postgres by DATABASE_URL (database.url_env), whose password Kubernetes puts in from the
Secret when the pod starts: the rendered object holds only `$(POSTGRES_PASSWORD)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes.names import digest, dns, labels, meta
from mindscape_ops.render.kubernetes.network import OPS, POD_EXEC
from mindscape_ops.render.kubernetes.workloads import escape

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import OpsDatabase, PodCommand
    from mindscape_ops.services.spec import ContainerSpec

PROJECT_DIR = "/project"
OPS_LABEL = "mindscape.io/ops"  # migrate, check, backup
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")  # optional: or the pod's cloud identity


def database(specs: dict[str, ContainerSpec]) -> tuple[str, OpsDatabase] | None:
    """The platform's database, when it runs (KubeShape.ops_database): what the Jobs operate on."""
    from mindscape_ops.services.registry import SERVICES

    for service in SERVICES:
        found = service.kubernetes.ops_database
        if found and service.name in specs:
            return service.name, found
    return None


def targets(platform: Platform, specs: dict[str, ContainerSpec]) -> dict[str, int]:
    """The services the ops pods connect to, and on which port."""
    found = database(specs)
    return {found[0]: specs[found[0]].container_port} if found else {}


def secret_keys(specs: dict[str, ContainerSpec]) -> set[str]:
    """The keys of the Secret the ops pods read: the database's password."""
    found = database(specs)
    return {found[1].password} if found else set()


def backs_up_to_s3(platform: Platform, specs: dict[str, ContainerSpec]) -> bool:
    return bool(platform.backups.enabled and platform.backups.s3 and database(specs))


CONTAINERFILE = "ops/Containerfile"


def containerfile(platform: Platform, specs: dict[str, ContainerSpec], folder: str) -> str:
    """The build file of kubernetes.ops_image: mindscape at the version that rendered it, with
    platform.yaml and (when there is a migrate Job) the migrations."""
    from mindscape_ops import __version__
    from mindscape_ops.render.jinja import render_template

    path = f"{folder}/{CONTAINERFILE}"
    return render_template(
        "kubernetes/ops.Containerfile.j2",
        path=path,
        folder=path.rsplit("/", 1)[0],
        image=platform.kubernetes.ops_image,
        version=__version__,
        project_dir=PROJECT_DIR,
        migrations=platform.database.migrations_dir.strip("/") if targets(platform, specs) else None,
    )


def _env(
    platform: Platform, specs: dict[str, ContainerSpec], secret: str, database: tuple[str, OpsDatabase], s3: bool
) -> list[dict[str, Any]]:
    name, db = database
    env: list[dict[str, Any]] = [
        {"name": db.password, "valueFrom": {"secretKeyRef": {"name": secret, "key": db.password}}},
        {"name": platform.database.url_env, "value": db.url(platform, f"{dns(name)}:{specs[name].container_port}")},
    ]
    if s3:
        encryption = platform.backups.encryption
        keys = (*AWS_KEYS, *([encryption.key_env] if encryption and encryption.key_env else []))
        # optional: put them in the Secret yourself (existing/external), or use the pod's cloud identity
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}} for key in keys
        ]
    return env


def _pod(platform: Platform, name: str, args: list[str], env: list[dict[str, Any]]) -> dict[str, Any]:
    image = platform.kubernetes.ops_image
    container = {
        "name": name,
        "image": image,
        "args": args,
        "workingDir": PROJECT_DIR,
        "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # mindscape keeps its lock, state and audit log in .mindscape/
        "volumeMounts": [
            {"name": "workspace", "mountPath": f"{PROJECT_DIR}/.mindscape"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "metadata": {"labels": labels(platform, "ops", OPS)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        },
    }


def _job(platform: Platform, name: str, args: list[str], env: list[dict[str, Any]], retries: int = 2) -> dict[str, Any]:
    """A Job named after its content (`migrate-<digest>`): a Job's template cannot change, so a
    new ops image or command is a new Job; finished ones go after a week. A pipeline waits on
    the label: `kubectl wait --for=condition=complete job -l mindscape.io/ops=migrate`."""
    spec = {
        "backoffLimit": retries,
        "activeDeadlineSeconds": 1800,
        "ttlSecondsAfterFinished": 7 * 24 * 3600,
        "template": _pod(platform, name, args, env),
    }
    metadata = meta(platform, f"{name}-{digest(spec)[:10]}", "ops", OPS)
    metadata["labels"][OPS_LABEL] = name
    spec["template"]["metadata"]["labels"][OPS_LABEL] = name
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def objects(platform: Platform, specs: dict[str, ContainerSpec], secret: str) -> list[dict[str, Any]]:
    found = [_job(platform, "check", ["check", "--only", "config"], [])]
    db = database(specs)
    if db is None:
        return found
    env = _env(platform, specs, secret, db, s3=False)
    # applied with a fresh Postgres (volume to bind, initdb): retried 10 s, 20 s, ... 320 s apart (~10 min)
    found.insert(0, _job(platform, "migrate", ["migrate", "up"], env, retries=6))
    if backs_up_to_s3(platform, specs):
        backup = _job(
            platform, "backup", ["backup", "create", "--service", db[0]], _env(platform, specs, secret, db, s3=True)
        )
        found.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta(platform, "backup", "ops", OPS),  # a CronJob may change: one name
                "spec": {
                    "schedule": platform.backups.schedule,
                    "timeZone": "Etc/UTC",  # backups.schedule is UTC
                    "concurrencyPolicy": "Forbid",
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {"metadata": {"labels": backup["metadata"]["labels"]}, "spec": backup["spec"]},
                },
            }
        )
    return found


# -- commands run in a service's pod, on a schedule or at rollout (KubeShape.pod_commands) ---------

EXEC_MODULE = "mindscape_ops.adapters.kubernetes"  # `python3 -m` it: exec in a pod, its exit status
EXEC_DEADLINE_S = 6 * 3600  # a full backup of a large database
EXEC_ONCE_RETRIES = 6  # a command at rollout: the pod may not run yet
EXEC_ONCE_DEADLINE_S = 1800  # its retries and waits included


def pod_commands(platform: Platform, specs: dict[str, ContainerSpec]) -> dict[str, tuple[PodCommand, ...]]:
    """Service -> its scheduled commands, for the StatefulSets that run."""
    from mindscape_ops.services.registry import BY_NAME

    found = {}
    for name in specs:
        shape = BY_NAME[name].kubernetes
        commands = shape.pod_commands(platform)
        if commands and shape.workload == "StatefulSet":
            found[name] = commands
    return found


def pod_command_objects(platform: Platform, specs: dict[str, ContainerSpec]) -> list[dict[str, Any]]:
    """Per service with pod commands: a ServiceAccount whose Role allows exec into pod 0 of its
    StatefulSet and nothing else, and per command a CronJob of the ops image (a Job at rollout
    when it has no schedule), which execs it there through the Kubernetes API (the data
    directory is in that pod only)."""
    found: list[dict[str, Any]] = []
    for name, commands in pod_commands(platform, specs).items():
        account = f"{dns(name)}-{POD_EXEC}"  # also its pods' name label: never the service's own selector
        found += _exec_access(platform, account)
        for command in commands:
            found.append(_exec_command(platform, name, account, command))
    return found


def _exec_access(platform: Platform, account: str) -> list[dict[str, Any]]:
    service = account.removesuffix(f"-{POD_EXEC}")
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(platform, account, account, POD_EXEC),
            "automountServiceAccountToken": False,  # only the CronJob's pods mount its token
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(platform, account, account, POD_EXEC),
            # exec into that one pod: `create` (Kubernetes 1.30 and later ask it of the WebSocket
            # exec too), `get` (what older API servers ask of a WebSocket exec)
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods/exec"],
                    "resourceNames": [f"{dns(service)}-0"],
                    "verbs": ["create", "get"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(platform, account, account, POD_EXEC),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account}],
        },
    ]


def _exec_pod(platform: Platform, service: str, account: str, command: PodCommand) -> dict[str, Any]:
    args = ["-m", EXEC_MODULE, "exec", f"{dns(service)}-0", dns(service), "--", *command.argv]
    pod = _pod(platform, command.name, args, [])
    pod["metadata"]["labels"] = labels(platform, account, POD_EXEC)
    container = pod["spec"]["containers"][0]
    container["command"] = ["python3"]
    container["args"] = [escape(arg) for arg in args]
    container.pop("env")
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    pod["spec"]["serviceAccountName"] = account
    pod["spec"]["automountServiceAccountToken"] = True  # its token: exec into that pod only
    return pod


def _exec_command(platform: Platform, service: str, account: str, command: PodCommand) -> dict[str, Any]:
    """A CronJob on the command's schedule; without one, a Job applied with each rollout."""
    if command.schedule is None:
        return _exec_job(platform, service, account, command)
    return _exec_cron_job(platform, service, account, command)


def _exec_job(platform: Platform, service: str, account: str, command: PodCommand) -> dict[str, Any]:
    """Named after its content like the migrate Job (a Job's template cannot change): applying
    the same rollout again leaves it as it is; a new ops image or command runs it once more."""
    spec = {
        # the exec fails while the pod is not running yet (scheduled, volume bound, initdb):
        # retried 10 s, 20 s, ... 320 s apart (~10 min), within the deadline
        "backoffLimit": EXEC_ONCE_RETRIES,
        "activeDeadlineSeconds": EXEC_ONCE_DEADLINE_S,
        "ttlSecondsAfterFinished": 7 * 24 * 3600,
        "template": _exec_pod(platform, service, account, command),
    }
    metadata = meta(platform, f"{command.name}-{digest(spec)[:10]}", account, POD_EXEC)
    metadata["labels"][OPS_LABEL] = command.name  # kubectl wait --for=condition=complete job -l ...
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def _exec_cron_job(platform: Platform, service: str, account: str, command: PodCommand) -> dict[str, Any]:
    job = {
        "backoffLimit": 1,  # pgBackRest resumes nothing: a second try starts the backup again
        "activeDeadlineSeconds": EXEC_DEADLINE_S,
        "ttlSecondsAfterFinished": 7 * 24 * 3600,
        "template": _exec_pod(platform, service, account, command),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(platform, command.name, account, POD_EXEC),
        "spec": {
            "schedule": command.schedule,
            "timeZone": "Etc/UTC",  # the schedules of platform.yaml are UTC
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels(platform, account, POD_EXEC)}, "spec": job},
        },
    }
