"""Shared helpers of the Kubernetes tests: platforms with a `kubernetes:` section (every
registered service on), rendered to a folder, and their objects parsed back from the YAML."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.config.models import Platform
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.registry import SERVICES

from .conftest import EXAMPLES, run_cli


def full_data(**kubernetes) -> dict:
    """examples/full with every registered service enabled, S3 backups, and `kubernetes:`."""
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    for service in SERVICES:
        data["services"].setdefault(service.name, {})
        if isinstance(data["services"][service.name], dict):
            data["services"][service.name].pop("enabled", None)
    data["backups"]["s3"] = {"bucket": "shop-backups", "region": "eu-west-1"}
    # the identity service, on here, asked on two routes; and what it cannot do left out (no
    # refresh tokens, no per-user session limit)
    data["services"]["gateway"]["routes"] = [
        {"path": "/api/", "roles": ["customer"]},
        {"path": "/admin/", "roles": ["admin"], "mfa": "required"},
    ]
    data["security"]["auth"]["jwt"].pop("refresh_token_ttl")
    data["security"]["auth"]["sessions"].pop("max_per_user")
    data["kubernetes"] = copy.deepcopy(kubernetes)
    return data


def minimal_data(**kubernetes) -> dict:
    data = yaml.safe_load((EXAMPLES / "minimal" / "platform.yaml").read_text())
    data["kubernetes"] = copy.deepcopy(kubernetes)
    return data


def platform_of(folder: Path, data: dict) -> Platform:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "platform.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load([folder / "platform.yaml"], env={}).platform


_RENDERED: dict[str, dict[str, str]] = {}


def render_key(platform: Platform) -> str:
    """What a render depends on: the platform's content. Not id(platform): CPython reuses the id
    of a collected object, so a later test could get another platform's render."""
    return platform.model_dump_json()


def rendered(platform: Platform) -> dict[str, str]:
    """render_platform, once per platform content (a full render takes a while)."""
    key = render_key(platform)
    if key not in _RENDERED:
        _RENDERED[key] = render_platform(platform)
    return _RENDERED[key]


def kube_files(platform: Platform) -> dict[str, str]:
    """The rendered files under deploy/kubernetes/, path -> text."""
    root = f"{platform.paths.deploy}/kubernetes/"
    return {path: text for path, text in rendered(platform).items() if path.startswith(root)}


def base_objects(platform: Platform) -> list[dict]:
    root = f"{platform.paths.deploy}/kubernetes/base/"
    found = []
    for path, text in kube_files(platform).items():
        if path.startswith(root) and not path.endswith("kustomization.yaml"):
            found += [obj for obj in yaml.safe_load_all(text) if obj]
    return found


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod spec) of every workload, Job and CronJob."""
    found = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            found.append((obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif "template" in spec:
            found.append((obj["metadata"]["name"], spec["template"]["spec"]))
    return found


def rendered_project(folder: Path, data: dict, env: dict[str, str] | None = None) -> Path:
    """A project rendered by the CLI, as a user would (secrets and the generator's input too)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "platform.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("render", "--target", "kubernetes", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    return folder
