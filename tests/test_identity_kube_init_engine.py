"""The identity service's init containers on Kubernetes (KubeShape.init_steps), run as a pod would
run them, on a real engine instead of a cluster: the `database` step in Postgres' image, as the
identity pod's uid, makes the identity role and database (twice: a restarted pod runs it again;
a changed password is set), then the `migrate` step in Kratos' image applies its schema with the
DSN of .mindscape/identity/secrets.yml, and the role logs in to its database."""

from __future__ import annotations

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.images.recipe import namespace
from mindscape_ops.services import identity

from .conftest import need, remove_project, unique_project

pytestmark = pytest.mark.engine
USER = "10000:10000"  # the identity pod's runAsUser (KubeShape.run_as)


def run_step(docker_client, step, platform, network: str, values: dict[str, str], **extra) -> tuple[int, str]:
    """One init step as its container: the same image, arguments (as Kubernetes hands them: `$$`
    is the rendered form of `$`), variables and Secret values."""
    environment = {**step.environment(platform), **{var: values[key] for var, key in step.secrets.items()}}
    image = step.image(platform) if step.image else platform.services.identity.image
    container = docker_client.containers.run(
        image,
        list(step.args(platform)),
        environment=environment,
        network=network,
        user=USER,
        detach=True,
        labels={"io.mindscape.project": network},
        **extra,
    )
    try:
        code = container.wait(timeout=180)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_init_containers_make_the_database_and_migrate_it(tmp_path, docker_client, go_image):
    import docker.errors

    go_image("identity")
    postgres_image, kratos_image = f"{namespace()}/postgres:15", f"{namespace()}/identity:1.3.1"
    for ref in (postgres_image, kratos_image):
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            need(f"image {ref} missing: run `mindscape images build {ref.split('/')[1].split(':')[0]}`")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: kinit\nservices:\n  postgres: {{image: {postgres_image}}}\n"
        f"  identity: {{image: {kratos_image}}}\n"
        "security: {auth: {mfa: {methods: [totp, lookup_secret]}}}\n"
    )
    platform = load([tmp_path / "platform.yaml"], env={}).platform
    database, migrate = identity.INIT_STEPS
    project = unique_project("kin")
    network = docker_client.networks.create(project, labels={"io.mindscape.project": project})
    try:
        docker_client.containers.run(
            postgres_image,
            name=f"{project}-postgres",
            environment={"POSTGRES_USER": "app", "POSTGRES_DB": "app", "POSTGRES_PASSWORD": "platform-pw"},
            network=project,
            detach=True,
            labels={"io.mindscape.project": project},
        )
        network.disconnect(f"{project}-postgres")
        network.connect(f"{project}-postgres", aliases=["postgres"])
        values = {"POSTGRES_PASSWORD": "platform-pw", "IDENTITY_DB_PASSWORD": "first-pw"}
        code, logs = run_step(docker_client, database, platform, project, values)
        assert code == 0, logs
        values["IDENTITY_DB_PASSWORD"] = "second-pw"  # the pod restarted with a new Secret
        code, logs = run_step(docker_client, database, platform, project, values)
        assert code == 0 and "ALTER ROLE" in logs and "CREATE DATABASE" not in logs, logs
        private = tmp_path / "private"
        private.mkdir(mode=0o755)
        secrets = private / identity.SECRETS_FILE
        secrets.write_text(
            identity.secrets_yaml(platform, {"IDENTITY_DB_PASSWORD": "second-pw", "IDENTITY_COOKIE_SECRET": "c" * 32})
        )
        secrets.chmod(0o644)  # the pod reads its Secret's file by group (fsGroup); here, by anyone
        mount = {str(secrets): {"bind": f"{identity.IN_CONTAINER}/private/{identity.SECRETS_FILE}", "mode": "ro"}}
        code, logs = run_step(docker_client, migrate, platform, project, values, volumes=mount)
        assert code == 0, logs[-2000:]
        check = docker_client.containers.get(f"{project}-postgres").exec_run(
            ["psql", "-h", "127.0.0.1", "-U", "identity", "-d", "identity", "-tAc", "SELECT count(*) FROM identities"],
            environment={"PGPASSWORD": "second-pw"},
        )
        assert check.exit_code == 0 and check.output.decode().strip() == "0", check.output
    finally:
        remove_project(docker_client, project)
