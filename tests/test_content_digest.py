"""The content hash of mounted config files (adapters/files.py `content_digest`) and how it
reaches drift detection (a completed ContainerSpec's hash; `make_plan`), with no engine: an
edited alert rule or redis.conf must recreate its container, whatever else stays the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mindscape_ops.adapters.files import content_digest
from mindscape_ops.config.loader import load
from mindscape_ops.provision.convergence import LABEL_CONFIG_HASH, LABEL_CONFIG_PARTS, Kind, Observed
from mindscape_ops.provision.desired import make_plan
from mindscape_ops.services.spec import ContainerSpec, Mount, container_specs
from mindscape_ops.workspace.project import Project
from mindscape_ops.workspace.store import Workspace

RULES = {
    "deploy/prometheus/prometheus.yml": "global: {scrape_interval: 15s}\n",
    "deploy/prometheus/rules/services.yml": "groups: [{name: a, rules: []}]\n",
    "deploy/prometheus/rules/deep/custom.yml": "groups: [{name: b, rules: []}]\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def same_length_edit(text: str) -> str:
    """One character changed, the size kept: a hash of names, sizes or lengths stays the same."""
    return text[:-2] + ("X" if text[-2] != "X" else "Y") + text[-1]


# -- one mounted file ------------------------------------------------------------------------


def test_a_files_digest_follows_its_content(tmp_path: Path):
    write(tmp_path, {"deploy/redis/redis.conf": "maxmemory 64mb\n"})
    before = content_digest(tmp_path, "deploy/redis/redis.conf")
    assert len(before) == 64 and before == content_digest(tmp_path, "deploy/redis/redis.conf")
    write(tmp_path, {"deploy/redis/redis.conf": same_length_edit("maxmemory 64mb\n")})
    edited = content_digest(tmp_path, "deploy/redis/redis.conf")
    assert edited != before
    write(tmp_path, {"deploy/redis/redis.conf": "maxmemory 64mb\n"})
    assert content_digest(tmp_path, "deploy/redis/redis.conf") == before  # content, not history


def test_touching_a_file_without_changing_it_changes_nothing(tmp_path: Path):
    write(tmp_path, RULES)
    before = content_digest(tmp_path, "deploy/prometheus")
    for name in RULES:
        os.utime(tmp_path / name, (1_000_000, 1_000_000))
    assert content_digest(tmp_path, "deploy/prometheus") == before


def test_a_mounted_file_moved_away_changes_the_digest(tmp_path: Path):
    write(tmp_path, {"deploy/gateway/nginx.conf": "events {}\n"})
    before = content_digest(tmp_path, "deploy/gateway/nginx.conf")
    (tmp_path / "deploy/gateway/nginx.conf").rename(tmp_path / "deploy/gateway/nginx.conf.bak")
    assert content_digest(tmp_path, "deploy/gateway/nginx.conf") != before


# -- a mounted folder ------------------------------------------------------------------------


def test_a_folders_digest_covers_every_files_content(tmp_path: Path):
    write(tmp_path, RULES)
    before = content_digest(tmp_path, "deploy/prometheus")
    seen = {before}
    for name, text in RULES.items():
        write(tmp_path, {name: same_length_edit(text)})
        edited = content_digest(tmp_path, "deploy/prometheus")
        assert edited not in seen, f"editing {name} left the folder's digest as it was"
        seen.add(edited)
        write(tmp_path, {name: text})
        assert content_digest(tmp_path, "deploy/prometheus") == before


def test_renaming_adding_or_removing_a_file_in_a_folder_changes_its_digest(tmp_path: Path):
    write(tmp_path, RULES)
    before = content_digest(tmp_path, "deploy/prometheus")
    rules = tmp_path / "deploy/prometheus/rules"
    (rules / "services.yml").rename(rules / "services.yaml")  # same content, another name
    renamed = content_digest(tmp_path, "deploy/prometheus")
    assert renamed != before
    write(tmp_path, {"deploy/prometheus/rules/extra.yml": "groups: []\n"})
    added = content_digest(tmp_path, "deploy/prometheus")
    assert added not in (before, renamed)
    (rules / "extra.yml").unlink()
    assert content_digest(tmp_path, "deploy/prometheus") == renamed


def test_names_and_contents_cannot_trade_bytes(tmp_path: Path):
    """`ab` holding "c" is not `a` holding "bc": names and contents are kept apart in the hash."""
    write(tmp_path, {"one/ab": "c"})
    write(tmp_path, {"two/a": "bc"})
    assert content_digest(tmp_path, "one") != content_digest(tmp_path, "two")


def test_a_folder_is_hashed_relative_to_itself(tmp_path: Path):
    """The same files under another deploy path are the same content (paths.deploy may move)."""
    write(tmp_path, RULES)
    write(tmp_path, {name.replace("deploy/", "ops/deploy/"): text for name, text in RULES.items()})
    assert content_digest(tmp_path, "deploy/prometheus") == content_digest(tmp_path, "ops/deploy/prometheus")


def test_files_beside_the_folder_are_not_in_its_digest(tmp_path: Path):
    write(tmp_path, RULES)
    before = content_digest(tmp_path, "deploy/prometheus")
    write(tmp_path, {"deploy/prometheus-old/prometheus.yml": "x\n", "deploy/grafana/a.json": "{}\n"})
    assert content_digest(tmp_path, "deploy/prometheus") == before


# -- the overlay: what `up` is about to render ------------------------------------------------


def test_the_overlay_stands_for_the_file_on_disk(tmp_path: Path):
    name = "deploy/redis/redis.conf"
    write(tmp_path, {name: "maxmemory 64mb\n"})
    on_disk = content_digest(tmp_path, name)
    assert content_digest(tmp_path, name, {name: "maxmemory 64mb\n"}) == on_disk
    overlaid = content_digest(tmp_path, name, {name: "maxmemory 128mb\n"})
    assert overlaid != on_disk
    write(tmp_path, {name: "maxmemory 128mb\n"})
    assert content_digest(tmp_path, name) == overlaid  # as if it had been written


def test_the_overlay_edits_adds_and_removes_files_of_a_folder(tmp_path: Path):
    write(tmp_path, RULES)
    services, extra = "deploy/prometheus/rules/services.yml", "deploy/prometheus/rules/extra.yml"
    edited = content_digest(tmp_path, "deploy/prometheus", {services: "groups: []\n"})
    added = content_digest(tmp_path, "deploy/prometheus", {extra: "groups: []\n"})
    removed = content_digest(tmp_path, "deploy/prometheus", {services: None})
    assert len({content_digest(tmp_path, "deploy/prometheus"), edited, added, removed}) == 4
    write(tmp_path, {services: "groups: []\n"})
    assert content_digest(tmp_path, "deploy/prometheus") == edited
    write(tmp_path, {services: RULES[services], extra: "groups: []\n"})
    assert content_digest(tmp_path, "deploy/prometheus") == added
    (tmp_path / extra).unlink()
    (tmp_path / services).unlink()
    assert content_digest(tmp_path, "deploy/prometheus") == removed


def test_the_overlay_can_hold_a_folder_not_yet_on_disk(tmp_path: Path):
    overlay = {"deploy/grafana/dashboards/a.json": "{}\n", "deploy/grafana/dashboards/b.json": "[]\n"}
    before_render = content_digest(tmp_path, "deploy/grafana/dashboards", overlay)
    write(tmp_path, overlay)
    assert content_digest(tmp_path, "deploy/grafana/dashboards") == before_render
    assert content_digest(tmp_path, "deploy/grafana/dashboards", {"deploy/grafana/other/c.json": "{}"}) == (
        before_render
    )


# -- into the spec's hash ------------------------------------------------------------------------


def spec() -> ContainerSpec:
    return ContainerSpec(
        service="prometheus",
        image="prom/prometheus:v2",
        container_port=9090,
        host_port=9090,
        bind="127.0.0.1",
        project="p",
        name="p-prometheus",
        network="p",
        mounts=(Mount("deploy/prometheus", "/etc/prometheus"),),
    )


def test_a_spec_completed_with_another_digest_hashes_differently():
    one = spec().completed(9090, "sha256:1", {"deploy/prometheus": "a" * 64}, {})
    two = spec().completed(9090, "sha256:1", {"deploy/prometheus": "b" * 64}, {})
    assert one.mounts[0].digest == "a" * 64 and two.mounts[0].digest == "b" * 64
    assert one.config_hash() != two.config_hash()
    assert {part for part, digest in one.parts().items() if two.parts()[part] != digest} == {"mounts"}
    again = spec().completed(9090, "sha256:1", {"deploy/prometheus": "a" * 64}, {})
    assert again.config_hash() == one.config_hash()


# -- make_plan: an edited mounted file recreates its service, and only it ---------------------------


class Engine:
    """What make_plan asks of the engine, answered from memory."""

    def __init__(self, observed: dict[str, Observed]) -> None:
        self.observed = observed

    def containers(self, project: str) -> dict[str, Observed]:
        return self.observed

    def published_port(self, name: str, port: int) -> int | None:
        return None


PLATFORM = """version: 1
project: digest
services:
  prometheus: {image: "mindscape-local/prometheus:2", port: 19090}
  redis: {image: "mindscape-local/redis:7", port: 16379}
"""
SECRETS = {"REDIS_PASSWORD": "pw"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "platform.yaml").write_text(PLATFORM)
    loaded = load([tmp_path / "platform.yaml"], env={})
    project = Project(loaded, Workspace(loaded.root))
    mounted = {m.source for s in container_specs(project.platform).values() for m in s.mounts}
    assert {"deploy/prometheus", "deploy/redis/redis.conf"} <= mounted
    write(tmp_path, {**RULES, "deploy/redis/redis.conf": "maxmemory 64mb\n", ".mindscape/redis/users.acl": "u\n"})
    return project


def plan(project: Project, observed: dict[str, Observed], overlay=None) -> dict[str, tuple[str, str]]:
    specs = container_specs(project.platform)
    ids = {spec.image: "sha256:1" for spec in specs.values()}
    done = make_plan(project, Engine(observed), specs, SECRETS, False, image_ids=ids, overlay=overlay)
    return {a.service: (a.kind, a.reason) for a in done.actions}


def created(project: Project) -> dict[str, Observed]:
    """The containers `up` would have made from the files as they are now."""
    specs = container_specs(project.platform)
    ids = {spec.image: "sha256:1" for spec in specs.values()}
    done = make_plan(project, Engine({}), specs, SECRETS, False, image_ids=ids)
    assert {a.kind for a in done.actions} == {Kind.CREATE}
    return {
        a.service: Observed(
            a.desired.name,
            a.service,
            "running",
            None,
            {LABEL_CONFIG_HASH: a.desired.config_hash, LABEL_CONFIG_PARTS: json.dumps(a.desired.parts)},
        )
        for a in done.actions
    }


def test_plan_recreates_the_service_whose_mounted_file_changed(project: Project):
    observed = created(project)
    assert {kind for kind, _ in plan(project, observed).values()} == {Kind.UNCHANGED}
    name = "deploy/prometheus/rules/deep/custom.yml"
    write(project.root, {name: same_length_edit(RULES[name])})
    actions = plan(project, observed)
    assert actions["prometheus"] == (Kind.RECREATE, "mounted config changed")
    assert actions["redis"][0] == Kind.UNCHANGED
    # `plan` judges by what `up` would render: the overlay puts the file back as it was
    assert plan(project, observed, overlay={name: RULES[name]})["prometheus"][0] == Kind.UNCHANGED
    write(project.root, {name: RULES[name], "deploy/redis/redis.conf": same_length_edit("maxmemory 64mb\n")})
    actions = plan(project, observed)
    assert actions["redis"] == (Kind.RECREATE, "mounted config changed")
    assert actions["prometheus"][0] == Kind.UNCHANGED
