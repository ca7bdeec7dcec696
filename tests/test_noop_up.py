"""The no-op `up` key: any input that could change the outcome changes the key."""

from __future__ import annotations

import json

import pytest

from mindscape_ops.provision import noop as noop_up


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_PORT", "5432")
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: p\nservices:\n  postgres: {port: '${PG_PORT}'}\n")
    (tmp_path / ".mindscape").mkdir()
    (tmp_path / ".mindscape/secrets.env").write_text("POSTGRES_PASSWORD=a\n")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/x.conf").write_text("x\n")
    (tmp_path / ".mindscape/state.json").write_text(json.dumps({"manifest": {"deploy/x.conf": "h"}}))
    return tmp_path


def key(project, options=None, env_names=()):
    return noop_up.input_key([project / "platform.yaml"], options or {"wait": True}, list(env_names), ["deploy"])[0]


def test_key_is_stable_and_ignores_the_cache_itself(project):
    first = key(project)
    state = json.loads((project / ".mindscape/state.json").read_text())
    state[noop_up.CACHE_KEY] = {"key": first}
    (project / ".mindscape/state.json").write_text(json.dumps(state))
    assert key(project) == first


@pytest.mark.parametrize(
    "change", ["file", "env", "secret", "generated", "state", "options", "receiver_env", "docker", "mounted"]
)
def test_every_input_moves_the_key(project, monkeypatch, change):
    before = key(project, env_names=["SLACK_URL"])
    options = {"wait": True}
    if change == "file":
        (project / "platform.yaml").write_text((project / "platform.yaml").read_text() + "# c\n")
    elif change == "env":
        monkeypatch.setenv("PG_PORT", "6543")
    elif change == "secret":
        (project / ".mindscape/secrets.env").write_text("POSTGRES_PASSWORD=b\n")
    elif change == "generated":
        (project / "deploy/x.conf").write_text("edited\n")
    elif change == "state":
        (project / ".mindscape/state.json").write_text(
            json.dumps({"manifest": {"deploy/x.conf": "h"}, "ports": {"a": 1}})
        )
    elif change == "options":
        options = {"wait": False}
    elif change == "receiver_env":
        monkeypatch.setenv("SLACK_URL", "https://hooks.example.com/x")
    elif change == "mounted":  # a user's own file in a mounted folder: not ours, still mounted
        (project / "deploy/extra-rules.yml").write_text("groups: []\n")
    elif change == "docker":
        monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert key(project, options, env_names=["SLACK_URL"]) != before


def test_no_cache_means_full_path(project):
    assert noop_up.try_noop([project / "platform.yaml"], {"wait": True}) is None


def test_the_no_op_path_loads_neither_the_models_nor_the_templates():
    """The no-op `up` is fast because it answers without pydantic, YAML or Jinja: importing it
    must not pull them in (a package __init__ that imports the models did, and cost ~0.5 s)."""
    import subprocess
    import sys

    code = (
        "import sys, mindscape_ops.provision.noop;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'yaml', 'jinja2', 'docker', 'psycopg'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
