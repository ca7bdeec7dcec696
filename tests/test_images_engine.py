"""The local images built by the product against a real engine: `up` of a platform whose local
image is missing builds it first (saying what and how long), `images build` keeps current images,
waits for a build already running, and `images list` says what is built.

Each test builds under its own tag prefix (MINDSCAPE_LOCAL_IMAGES) and cache (MINDSCAPE_CACHE),
reusing the Debian base already imported (by `make test`'s setup), and removes its images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import REPO, need, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


@pytest.fixture
def prefix(docker_client, tmp_path: Path):
    """A tag prefix and cache of this test's own; everything tagged under it removed afterwards."""
    name = f"mst{uuid.uuid4().hex[:8]}"
    env = {"MINDSCAPE_LOCAL_IMAGES": name, "MINDSCAPE_CACHE": str(tmp_path / "cache")}
    yield name, env
    for image in docker_client.images.list(name=f"{name}/*"):
        for tag in image.tags:
            if tag.startswith(f"{name}/"):
                docker_client.images.remove(tag, force=True)


def labels(docker_client, ref: str) -> dict[str, str]:
    return docker_client.images.get(ref).labels


def test_up_builds_the_missing_local_image_of_a_service_it_starts(docker_client, prefix, tmp_path: Path):
    name, env = prefix
    project = unique_project("imgup")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  redis: {{image: '{name}/redis:7', port: auto}}\n"
    )
    try:
        up = run_cli("up", cwd=tmp_path, env=env, timeout=600)
        assert up.returncode == 0, up.stderr
        assert f"building {name}/redis:7" in up.stderr and "Traceback" not in up.stderr
        built = labels(docker_client, f"{name}/redis:7")
        assert built["io.mindscape.service"] == "redis" and built["io.mindscape.package-version"].startswith("5:7.")
        config = docker_client.images.get(f"{name}/redis:7").attrs["Config"]
        assert config["Entrypoint"] == ["/usr/local/bin/redis-entrypoint"] and config["Cmd"] == ["redis-server"]
        assert list(config["Volumes"]) == ["/data"] and config["WorkingDir"] == "/data"
        running = docker_client.containers.list(filters={"label": f"io.mindscape.project={project}"})
        assert [c.image.tags for c in running] == [[f"{name}/redis:7"]]
        # the other services' images are not built: only what this platform starts
        assert docker_client.images.list(name=f"{name}/postgres") == []
    finally:
        remove_project(docker_client, project)


def test_images_build_keeps_current_images_and_list_says_what_is_built(docker_client, prefix):
    name, env = prefix
    first = run_cli("images", "build", "postgres_exporter", cwd=REPO, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert f"built {name}/postgres_exporter:0.11" in first.stderr
    image = docker_client.images.get(f"{name}/postgres_exporter:0.11").id
    again = run_cli("images", "build", "postgres_exporter", cwd=REPO, env=env)
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr
    assert docker_client.images.get(f"{name}/postgres_exporter:0.11").id == image
    listed = run_cli("images", "list", "--json", cwd=REPO, env=env)
    rows = {row["service"]: row for row in json.loads(listed.stdout)}
    assert rows["postgres_exporter"]["state"] == "built" and rows["postgres_exporter"]["tag"].startswith(f"{name}/")
    assert rows["jaeger"]["source"] == "go" and rows["jaeger"]["estimate"] >= 300
    assert rows["node_exporter"]["state"] == "missing"
    table = run_cli("images", "list", cwd=REPO, env=env).stdout.splitlines()
    assert any(line.split()[:3] == [f"{name}/postgres_exporter:0.11", "built", "debian"] for line in table)
    assert any(line.split()[:3] == [f"{name}/jaeger:2.13.0", "missing", "go"] and "10 min" in line for line in table)


def test_a_second_build_waits_for_the_running_one_and_says_so(docker_client, prefix):
    from filelock import FileLock

    name, env = prefix
    cache = Path(env["MINDSCAPE_CACHE"])
    cache.mkdir(parents=True)
    lock = FileLock(str(cache / ".lock"))
    said = []
    with lock:  # a build "running" with this cache, until the second one says it waits
        waiting = subprocess.Popen(
            [sys.executable, "-m", "mindscape_ops", "images", "build", "node_exporter"],
            cwd=REPO,
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in waiting.stderr:
            said.append(line)
            if "another build of the local images is running" in line:
                break
        assert waiting.poll() is None, "".join(said)  # still waiting, not done
        assert docker_client.images.list(name=f"{name}/node_exporter") == []
    _, rest = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, "".join(said) + rest
    assert f"built {name}/node_exporter:1.5" in rest


def test_up_that_cannot_build_says_what_to_run_and_exits_3(docker_client, prefix, tmp_path: Path):
    """No `go` on PATH and no cached binary: one line naming the command, nothing started."""
    name, env = prefix
    project = unique_project("imgno")
    service = f"  victorialogs: {{image: '{name}/victorialogs:1.52', port: auto}}\n"
    (tmp_path / "platform.yaml").write_text(f"version: 1\nproject: {project}\nservices:\n{service}")
    (tmp_path / "bin").mkdir()  # a PATH with no go on it, wherever this machine has one
    bare = {**env, "PATH": str(tmp_path / "bin")}
    try:
        up = run_cli("up", cwd=tmp_path, env=bare, timeout=120)
        assert up.returncode == 3, up.stderr
        assert "there is no go command" in up.stderr and "mindscape images build victorialogs" in up.stderr
        assert "Traceback" not in up.stderr
        assert docker_client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"}) == []
    finally:
        remove_project(docker_client, project)


def test_a_rootfs_is_imported_and_cached_in_one_pass_written_then_renamed(docker_client, prefix, tmp_path: Path):
    """The debootstrapped folder goes into the engine and into the cache from one tar stream; the
    cache file appears whole (renamed from .partial) and carries the package versions as a label."""
    from mindscape_ops.adapters.image_build import ImageStore
    from mindscape_ops.images import rootfs

    name, _env = prefix
    target, cache = tmp_path / "rootfs", tmp_path / "cache"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "hello").write_text("hello\n")
    cache.mkdir()
    (cache / "rootfs-abc123.versions").write_text("redis-server=5:7.0.15-1\nnginx=1.22.1-9\n")
    store = ImageStore()
    rootfs._import_and_cache(store, target, f"{name}/base:rootfs-abc123", cache, "abc123")
    assert sorted(p.name for p in cache.iterdir()) == ["rootfs-abc123.tar", "rootfs-abc123.versions"]
    found = store.labels(f"{name}/base:rootfs-abc123")
    assert found == {
        "io.mindscape.rootfs-hash": "abc123",
        "io.mindscape.package-versions": "redis-server=5:7.0.15-1,nginx=1.22.1-9",
    }
    assert rootfs.kill_processes_in(target) == []  # nothing runs in it


def test_a_go_program_lands_in_its_image_where_the_recipe_says(docker_client, prefix):
    """The binary (here a stand-in put in the Go cache) is put into the image, executable, with
    the recipe's config and the module's provenance as labels."""
    from mindscape_ops.images import gobuild
    from mindscape_ops.images.recipe import load_recipes

    if gobuild.go_version() is None:
        need("no go: the Go cache is keyed by the Go version")
    name, env = prefix
    recipe = load_recipes()["victorialogs"]
    binary = gobuild.binary_path(Path(env["MINDSCAPE_CACHE"]), recipe.go, gobuild.go_version())
    binary.parent.mkdir(parents=True)
    binary.write_text('#!/bin/sh\necho stand-in for victoria-logs "$@"\n')
    built = run_cli("images", "build", "victorialogs", cwd=REPO, env=env, timeout=600)
    assert built.returncode == 0, built.stderr
    assert "from its cached Go binary" in built.stderr and f"built {name}/victorialogs:1.52" in built.stderr
    image = docker_client.images.get(f"{name}/victorialogs:1.52")
    assert image.labels["io.mindscape.package-version"] == f"go:{recipe.go.target}@{recipe.go.version}"
    assert image.labels["org.opencontainers.image.version"] == "1.52.1"
    assert image.attrs["Config"]["Entrypoint"] == ["/victoria-logs-prod"]
    out = docker_client.containers.run(image.id, remove=True)
    assert out.decode() == "stand-in for victoria-logs -storageDataPath=/victoria-logs-data\n"
