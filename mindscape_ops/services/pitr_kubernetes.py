"""Point-in-time recovery on Kubernetes (backups.pitr), its part of the postgres StatefulSet's
KubeShape: pgbackrest.conf as a ConfigMap, the cipher pass and S3 keys from the Secret, the
Job at each rollout that creates the stanza and checks archiving, the pitr-full and pitr-diff
CronJobs that back up in the Postgres pod, the S3 repository among the hosts it reaches, and what
an operator must do on the cluster (the image with pgBackRest). The repository is S3 there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.pitr import CONF_DIR, build_file, conf_text, derived_image, reaches_host, settings, stanza

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import PodCommand

SECRET_CONF = f"{CONF_DIR}/conf.d"  # secrets.conf: the cipher pass and S3 keys, a key of the Secret


def kube_config(platform: Platform) -> dict[str, dict[str, str]]:
    """pgbackrest.conf as a ConfigMap over /etc/pgbackrest (no secret in it)."""
    return {CONF_DIR: {"pgbackrest.conf": conf_text(platform)}} if settings(platform) else {}


def kube_secret_files(platform: Platform) -> dict[str, tuple[str, ...]]:
    """conf.d/secrets.conf from the Secret, mounted at /etc/pgbackrest/conf.d."""
    return {SECRET_CONF: ("secrets.conf",)} if settings(platform) else {}


STANZA_JOB = "pitr-stanza"  # the Job at rollout that creates the stanza (its name before the digest)
READY_WAIT_S = 300  # how long the Job's command waits in the pod for Postgres to answer


def stanza_script(platform: Platform) -> str:
    """What the rollout's Job runs in postgres-0: wait until Postgres answers on TCP as its
    healthcheck asks (the server initdb's entrypoint starts first listens on the socket only),
    then create the stanza (pgBackRest leaves an existing one as it is) and `check` it, which
    switches WAL and waits until the segment is in the repository: archiving is proven, not
    assumed. A non-zero exit status on any failure (the Job retries)."""
    pg, name, tries = platform.services.postgres, stanza(platform), READY_WAIT_S // 2
    return (
        f"i=0; until pg_isready -q -h 127.0.0.1 -U {pg.user} -d {pg.database}; do i=$((i+1)); "
        f'if [ "$i" -ge {tries} ]; then echo "postgres did not answer in {READY_WAIT_S} s" >&2; exit 1; fi; '
        f"sleep 2; done; pgbackrest --stanza={name} stanza-create && pgbackrest --stanza={name} check"
    )


def pod_commands(platform: Platform) -> tuple[PodCommand, ...]:
    """At each rollout, a Job that creates the stanza and checks archiving, so WAL leaves the
    pod's volume from the start; then full (and differential) backups on their schedules, in the
    Postgres pod where the data directory is. The CronJobs create the stanza too (idempotent): a
    repository emptied since still gets one."""
    from mindscape_ops.services.definition import PodCommand

    pitr = settings(platform)
    if pitr is None:
        return ()
    name = stanza(platform)
    found = [("pitr-full", pitr.full_schedule, "full")]
    if pitr.diff_schedule:
        found.append(("pitr-diff", pitr.diff_schedule, "diff"))
    return (
        PodCommand(STANZA_JOB, None, ("sh", "-c", stanza_script(platform))),
        *(
            PodCommand(
                job,
                schedule,
                (
                    "sh",
                    "-c",
                    f"pgbackrest --stanza={name} stanza-create && pgbackrest --stanza={name} --type={kind} backup",
                ),
            )
            for job, schedule, kind in found
        ),
    )


def outside_ports(platform: Platform) -> set[int]:
    """Postgres' archive_command reaches the S3 repository over HTTPS."""
    from mindscape_ops.services.definition import url_port

    s3 = platform.backups.s3
    if settings(platform) is None or platform.backups.pitr.repository != "s3" or s3 is None:
        return set()
    return {url_port(str(s3.endpoint_url)) if s3.endpoint_url else 443}


def outside_hosts(platform: Platform) -> list[tuple[str, str | None]]:
    """An S3 endpoint on this machine is host.docker.internal in pgbackrest.conf: not in a cluster."""
    return [("backups.s3.endpoint_url (backups.pitr)", "host.docker.internal")] if reaches_host(platform) else []


def cluster_notes(platform: Platform) -> list[str]:
    if settings(platform) is None:
        return []
    image = derived_image(platform)
    if image:
        repository = image.split(":")[0]
        where = (
            f"kubernetes: backups.pitr: the postgres pod runs {image}, the official image with pgBackRest: build it "
            f"(`docker build -f {build_file(platform)} -t REGISTRY/postgres-pgbackrest:TAG .`) and push it where the "
            f"cluster pulls from, then name it in each overlay's kustomization (`images: [{{name: {repository}, "
            "newName: REGISTRY/postgres-pgbackrest, newTag: TAG}]`), as for the ops image"
        )
    else:
        image = platform.services.postgres.image
        where = f"kubernetes: backups.pitr: the postgres pod's image ({image}) must have pgBackRest"
    return [
        where,
        f"kubernetes: backups.pitr: each rollout runs the Job {STANZA_JOB}-* (python3 -m "
        "mindscape_ops.adapters.kubernetes exec into postgres-0, as the pitr CronJobs do): it waits for Postgres, "
        "creates the pgBackRest stanza and checks that WAL reaches the repository; until it succeeds WAL waits in "
        f"the pod's volume. A pipeline may wait on it (`kubectl wait --for=condition=complete job -l "
        f"mindscape.io/ops={STANZA_JOB} -n NAMESPACE --timeout=30m`); if it failed, `kubectl logs job/NAME` says why",
    ]
