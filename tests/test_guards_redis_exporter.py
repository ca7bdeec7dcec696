"""The Redis exporter reads its password from a mounted file (its JSON map of address to
password), never from its environment: in the container spec `up` creates, in the compose
export and on Kubernetes alike. Engine-free; tests/test_redis_exporter_engine.py runs it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.services import redis_exporter
from mindscape_ops.services.spec import container_specs

from .conftest import run_cli
from .kubernetes_support import base_objects, full_data, kube_files, platform_of, pod_specs

PLATFORM = "version: 1\nproject: rx\nservices: {redis: {}, redis_exporter: {}}\n"
TARGET = "/run/secrets/redis_exporter-passwords.json"


def test_the_exporter_gets_a_path_to_a_read_only_file_and_no_password(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(PLATFORM)
    spec = container_specs(load([tmp_path / "platform.yaml"], env={}).platform)["redis_exporter"]
    assert spec.secrets == {} and spec.secret_files == {}
    assert spec.environment == {"REDIS_ADDR": "redis://redis:6379", "REDIS_PASSWORD_FILE": TARGET}
    [mount] = spec.mounts
    assert (mount.source, mount.target, mount.read_only) == (redis_exporter.PASSWORDS, TARGET, True)
    assert json.loads(redis_exporter.passwords_json('p"w')) == {"redis://redis:6379": 'p"w'}


def test_render_writes_the_password_file_and_the_compose_export_mounts_it(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(PLATFORM)
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    password = dict(
        line.split("=", 1) for line in (tmp_path / ".mindscape" / "secrets.env").read_text().splitlines() if "=" in line
    )["REDIS_PASSWORD"]
    written = tmp_path / redis_exporter.PASSWORDS
    assert json.loads(written.read_text()) == {"redis://redis:6379": password}
    assert stat.S_IMODE((tmp_path / ".mindscape").stat().st_mode) == 0o700  # the folder keeps others out

    compose = (tmp_path / "deploy" / "compose.yaml").read_text()
    exporter = yaml.safe_load(compose)["services"]["redis_exporter"]
    assert exporter["environment"] == {"REDIS_ADDR": "redis://redis:6379", "REDIS_PASSWORD_FILE": TARGET}
    assert {
        "type": "bind",
        "source": "../.mindscape/redis_exporter/passwords.json",
        "target": TARGET,
        "read_only": True,
    } in exporter["volumes"]
    assert password not in compose and "${REDIS_PASSWORD" not in compose


def test_on_kubernetes_the_file_is_a_key_of_the_secret_and_no_env_holds_the_password(tmp_path: Path):
    platform = platform_of(tmp_path, full_data(secrets={"source": "generate"}))
    [(_, pod)] = [(name, pod) for name, pod in pod_specs(base_objects(platform)) if name == "redis-exporter"]
    [container] = pod["containers"]
    env = {item["name"]: item for item in container.get("env", [])}
    assert "REDIS_PASSWORD" not in env and env["REDIS_PASSWORD_FILE"]["value"] == TARGET
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == TARGET]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["items"] == [{"key": "redis_exporter-passwords.json", "path": Path(TARGET).name}]
    files = kube_files(platform)
    kustomization = yaml.safe_load(files[f"{platform.paths.deploy}/kubernetes/base/kustomization.yaml"])
    [generator] = kustomization["secretGenerator"]
    assert "redis_exporter-passwords.json=secret-files/redis_exporter-passwords.json" in generator["files"]
