"""init and render through the real CLI: files, secrets, drift checks, hand edits, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mindscape_ops.render.engine import MARKER

from .conftest import EXAMPLES, REPO, run_cli


def generated_files(root: Path) -> dict[str, str]:
    state = json.loads((root / ".mindscape/state.json").read_text())
    return {path: (root / path).read_text() for path in state["manifest"]}


@pytest.fixture
def initialised(tmp_path) -> Path:
    result = run_cli("init", "shop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "shop"


def test_init_writes_a_commented_platform_secrets_and_every_file(initialised):
    text = (initialised / "platform.yaml").read_text()
    assert "project: shop" in text and text.count("#") >= 25
    secrets = initialised / ".mindscape/secrets.env"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert ".mindscape/" in (initialised / ".gitignore").read_text().splitlines()
    files = generated_files(initialised)
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/backup.yml",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules/services.yml",
        "deploy/alertmanager/alertmanager.yml",
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/grafana/dashboards/platform-overview.json",
        "deploy/gateway/nginx.conf",
        "deploy/security/policy.json",
        "deploy/redis/redis.conf",
        "deploy/pgbouncer/pgbouncer.ini",
        "deploy/compose.yaml",
        "docs/runbooks/backup-and-restore.md",
        "docs/runbooks/incident-response.md",
        "docs/runbooks/daily-checks.md",
    ]:
        assert expected in files, expected
    for path, content in files.items():
        first = content.splitlines()[0]
        assert path.endswith(".json") or MARKER in first, path
    passwords = [line.split("=", 1)[1] for line in secrets.read_text().splitlines() if "=" in line and line[0] != "#"]
    assert len(passwords) >= 3
    everything = "\n".join([*files.values(), text, (initialised / ".mindscape/audit.log").read_text()])
    assert not any(password in everything for password in passwords)


def test_init_refuses_to_overwrite_without_force(initialised):
    (initialised / "platform.yaml").write_text((initialised / "platform.yaml").read_text() + "# mine\n")
    secrets_before = (initialised / ".mindscape/secrets.env").read_text()
    result = run_cli("init", ".", cwd=initialised)
    assert result.returncode == 2 and "--force" in result.stderr and "Traceback" not in result.stderr
    assert (initialised / "platform.yaml").read_text().endswith("# mine\n")
    assert run_cli("init", ".", "--force", "--name", "shop", cwd=initialised).returncode == 0
    assert not (initialised / "platform.yaml").read_text().endswith("# mine\n")
    assert (initialised / ".mindscape/secrets.env").read_text() == secrets_before  # never overwritten


def test_render_check_names_stale_files_and_writes_nothing(initialised):
    assert run_cli("render", "--check", cwd=initialised).returncode == 0
    platform = initialised / "platform.yaml"
    platform.write_text(platform.read_text().replace("requests_per_second: 10", "requests_per_second: 25"))
    before = generated_files(initialised)
    result = run_cli("render", "--check", "--diff", cwd=initialised)
    assert result.returncode == 1
    assert "stale" in result.stdout and "deploy/gateway/nginx.conf" in result.stdout
    assert "rate=25r/s" in result.stdout  # the diff shows the change
    assert generated_files(initialised) == before
    assert run_cli("render", cwd=initialised).returncode == 0
    assert run_cli("render", "--check", cwd=initialised).returncode == 0


def test_render_check_reports_missing_files(initialised):
    (initialised / "deploy/redis/redis.conf").unlink()
    result = run_cli("render", "--check", cwd=initialised)
    assert result.returncode == 1 and "missing" in result.stdout and "deploy/redis/redis.conf" in result.stdout
    assert not (initialised / "deploy/redis/redis.conf").exists()


def test_hand_edited_file_is_kept_and_reported_until_forced(initialised):
    conf = initialised / "deploy/redis/redis.conf"
    conf.write_text(conf.read_text() + "# my tuning\n")
    check = run_cli("render", "--check", cwd=initialised)
    assert check.returncode == 1 and "hand-edited" in check.stdout and "deploy/redis/redis.conf" in check.stdout
    result = run_cli("render", cwd=initialised)
    assert result.returncode == 1 and "kept 1 hand-edited" in result.stderr
    assert conf.read_text().endswith("# my tuning\n")
    assert run_cli("render", "--force", cwd=initialised).returncode == 0
    assert not conf.read_text().endswith("# my tuning\n")


def test_audit_log_records_changing_commands(initialised):
    run_cli("render", cwd=initialised)
    run_cli("validate", cwd=initialised)
    entries = [json.loads(line) for line in (initialised / ".mindscape/audit.log").read_text().splitlines()]
    assert [e["command"] for e in entries] == ["init", "render"]  # validate changes nothing
    for entry in entries:
        assert set(entry) == {"time", "user", "command", "arguments", "outcome", "duration_s"}
        assert entry["outcome"] == "ok"


def test_render_is_deterministic(initialised):
    before = generated_files(initialised)
    os.remove(initialised / ".mindscape/state.json")
    assert run_cli("render", cwd=initialised).returncode == 0
    assert generated_files(initialised) == before


def test_invalid_file_changes_nothing(initialised):
    before = generated_files(initialised)
    (initialised / "platform.yaml").write_text("version: 1\nproject: shop\nservices: {redis: {port: 0}}\n")
    result = run_cli("render", cwd=initialised)
    assert result.returncode == 2 and "services.redis.port" in result.stderr
    assert generated_files(initialised) == before


def test_plain_install_renders_what_a_checkout_renders(tmp_path):
    """The wheel carries templates/: a non-editable install renders byte for byte the same."""
    wheel_dir, venv = tmp_path / "wheel", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(REPO)],
        check=True,
        capture_output=True,
    )
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    wheel = next(wheel_dir.glob("mindscape-*.whl"))
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        check=True,
        capture_output=True,
    )
    outputs = {}
    for name, python in (("installed", venv / "bin/python"), ("checkout", Path(sys.executable))):
        root = tmp_path / name
        root.mkdir()
        (root / "platform.yaml").write_text((EXAMPLES / "full" / "platform.yaml").read_text())
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        cwd = root if name == "installed" else REPO  # the installed copy must not see the checkout
        result = subprocess.run(
            [python, "-m", "mindscape_ops", "render", "-f", str(root / "platform.yaml")],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        outputs[name] = generated_files(root)
    where = subprocess.run(
        [venv / "bin/python", "-c", "import mindscape_ops; print(mindscape_ops.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where
    assert outputs["installed"] == outputs["checkout"] and len(outputs["installed"]) > 15
