"""The ops image of the cluster's Jobs, built from its rendered build file: here from the local
images' Debian base (python3 installed by the build) with the wheel of this checkout and its
dependencies as a wheelhouse, no package index; then mindscape runs in it as the Jobs run it
(nobody, read-only root, an emptyDir for .mindscape/)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import yaml

from .conftest import REPO, need
from .kubernetes_support import full_data, rendered_project

pytestmark = pytest.mark.engine
RUN = uuid.uuid4().hex[:8]
IMAGE_PYTHON_EXTRAS = ("async-timeout>=4.0.3",)


def local_base(client) -> str:
    """This checkout's Debian base, else another build's (the same Debian suite; a base built
    from other recipes differs only in the packages the services need)."""
    from mindscape_ops.images.build import Builder

    builder = Builder(say=lambda line: None)
    wanted = f"{builder.prefix}/base:{builder.base_hash}"
    tags = [t for image in client.images.list(name=f"{builder.prefix}/base") for t in image.tags]
    tags = [t for t in tags if ":rootfs-" not in t]
    if not tags:
        need(f"{wanted} is missing: `mindscape images build` makes it")
    return wanted if wanted in tags else sorted(tags)[0]


def build(client, **kwargs) -> None:
    """An image build, its log in the failure when it fails."""
    import docker.errors

    try:
        client.images.build(**kwargs)
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
        pytest.fail(f"{exc.msg}\n{log[-4000:]}")


@pytest.fixture(scope="module")
def ops_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("ops")
    (project / "db" / "migrations").mkdir(parents=True)
    (project / "db" / "migrations" / "20260101000000_orders.sql").write_text("CREATE TABLE orders (id int);\n")
    return rendered_project(project, full_data())


def job_args(project, name: str) -> list[str]:
    """The arguments of the rendered Job `name` (label mindscape.io/ops), as the cluster runs it."""
    for path in sorted((project / "ops" / "deploy" / "kubernetes" / "base").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj["kind"] == "Job" and obj["metadata"]["labels"].get("mindscape.io/ops") == name:
                return obj["spec"]["template"]["spec"]["containers"][0]["args"]
    raise AssertionError(f"no {name} Job rendered")


@pytest.fixture(scope="module")
def ops_image(docker_client, ops_project):
    base = local_base(docker_client)
    project = ops_project
    wheels = project / "wheels"
    built = subprocess.run(
        # and what Debian's python3 (3.11.2) needs besides: redis wants async-timeout before 3.11.3
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", str(REPO), *IMAGE_PYTHON_EXTRAS]
        + ["-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    tag = f"mindscape-test-ops:{RUN}"
    build(
        docker_client,
        path=str(project),
        dockerfile="ops/deploy/kubernetes/ops/Containerfile",
        tag=tag,
        rm=True,
        forcerm=True,
        buildargs={
            "BASE": base,
            "WHEELHOUSE": "wheels",
            "MINDSCAPE": "mindscape",
            "PIP_ARGS": "--no-index --find-links /tmp/wheels",
        },
        labels={"io.mindscape.test": "1", "io.mindscape.test.run": RUN},
    )
    yield tag
    docker_client.images.remove(tag, force=True)


def run_as_a_job(client, image: str, *args: str) -> str:
    return client.containers.run(
        image,
        list(args),
        remove=True,
        user="65534:65534",
        read_only=True,
        tmpfs={"/project/.mindscape": "", "/tmp": ""},
        network_mode="none",
        labels={"io.mindscape.test": "1", "io.mindscape.test.run": RUN},
    ).decode()


def test_the_ops_image_runs_mindscape_of_this_checkout(docker_client, ops_image):
    from mindscape_ops import __version__

    assert __version__ in run_as_a_job(docker_client, ops_image, "--version")
    assert "--only" in run_as_a_job(docker_client, ops_image, "check", "--help")


def test_the_ops_image_holds_the_project(docker_client, ops_image):
    listing = docker_client.containers.run(
        ops_image, entrypoint=["ls", "/project", "/project/db/migrations"], remove=True, network_mode="none"
    ).decode()
    assert "platform.yaml" in listing and "20260101000000_orders.sql" in listing
    # the platform file loads and validates inside the image, as the Jobs run it
    run_as_a_job(docker_client, ops_image, "validate")  # raises on a non-zero exit


def test_the_check_job_passes_in_the_ops_image(docker_client, ops_image, ops_project):
    """The check Job's own arguments: the config gates. platform.yaml is valid with the image's
    mindscape; the generated files are not in the image (the repository has them, and CI's
    `render --check` compares them), so config.rendered says so and is skipped, not failed."""
    args = job_args(ops_project, "check")
    assert args == ["check", "--only", "config"]
    output = run_as_a_job(docker_client, ops_image, *args)  # raises on a non-zero exit
    assert "config.valid" in output and "config.rendered" in output
    rows = {row["id"]: row for row in json.loads(run_as_a_job(docker_client, ops_image, *args, "--json"))}
    assert rows["config.valid"]["status"] == "pass", rows
    assert rows["config.rendered"]["status"] == "skip", rows
    assert "as in the ops image" in rows["config.rendered"]["message"]


def test_the_build_file_installs_the_rendering_version(tmp_path):
    from mindscape_ops import __version__

    project = rendered_project(tmp_path, full_data())
    text = (project / "ops/deploy/kubernetes/ops/Containerfile").read_text()
    assert f"ARG MINDSCAPE=mindscape=={__version__}\n" in text
    assert "COPY db/migrations/ /project/db/migrations/" in text and 'ENTRYPOINT ["mindscape"]' in text


def test_the_pitr_cronjobs_process_loads_in_the_ops_image(docker_client, ops_image, tmp_path):
    """The pitr CronJobs' command and arguments as rendered, run as they would be (nobody,
    read-only root): the exec module and the client's stream load in the image; outside a
    cluster it says in one line that it has no in-cluster config, and fails."""
    import docker.errors

    from .kubernetes_support import base_objects, by_kind, platform_of

    data = full_data(secrets={"source": "generate"})
    data["backups"]["pitr"] = {"enabled": True, "repository": "s3"}
    cron = by_kind(base_objects(platform_of(tmp_path, data)), "CronJob")["pitr-full"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    with pytest.raises(docker.errors.ContainerError) as failed:
        docker_client.containers.run(
            ops_image,
            container["args"],
            entrypoint=container["command"],
            remove=True,
            user="65534:65534",
            read_only=True,
            tmpfs={"/tmp": ""},
            network_mode="none",
            labels={"io.mindscape.test": "1", "io.mindscape.test.run": RUN},
        )
    assert failed.value.exit_status == 1
    said = failed.value.stderr.decode().strip()
    assert said.startswith("exec in pod postgres-0 failed: ") and "\n" not in said, said
