"""init and render through the real CLI: files, secrets, drift checks, hand edits, audit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mindscape_ops.render.marker import MARKER

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    wheel_dir = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools reuses a checkout's build/ folder, whose stale files would
    # otherwise decide what the wheel holds.
    source = tmp_path_factory.mktemp("source") / "mindscape"
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(REPO, source, ignore=junk)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(source)],
        check=True,
        capture_output=True,
    )
    return next(wheel_dir.glob("mindscape-*.whl"))


def test_every_module_and_template_ships_in_the_wheel(wheel):
    import zipfile

    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "mindscape_ops"
    modules = {f"mindscape_ops/{p.relative_to(package)}" for p in package.rglob("*.py")}
    templates = {
        f"mindscape_ops/templates/{p.relative_to(REPO / 'templates')}" for p in (REPO / "templates").rglob("*.j2")
    }
    assert modules and templates
    assert modules - shipped == set() and templates - shipped == set()


def test_the_local_image_recipes_and_files_ship_in_the_wheel(wheel):
    """A plain (non-editable) install builds the local images a checkout builds: the recipes, the
    files laid over the Debian base (executables kept executable) and the script run in it."""
    import zipfile

    archive = zipfile.ZipFile(wheel)
    shipped = set(archive.namelist())
    images = REPO / "mindscape_ops" / "images"
    data = {p.relative_to(REPO).as_posix() for p in images.rglob("*") if p.is_file() and p.suffix != ".py"}
    assert {"mindscape_ops/images/recipes/jaeger.toml", "mindscape_ops/images/prepare-rootfs.sh"} <= data
    assert "mindscape_ops/images/rootfs/usr/local/bin/postgres-entrypoint" in data
    assert {d for d in data if "__pycache__" not in d} - shipped == set()


def test_plain_install_renders_what_a_checkout_renders(tmp_path, wheel):
    """The wheel carries templates/: a non-editable install renders byte for byte the same."""
    venv = tmp_path / "venv"
    # A clean venv that borrows the dependencies of the interpreter running the tests (what
    # `make test` installed into .venv), not those of whatever Python the machine has: the
    # paths go in as plain sys.path entries, so .venv's editable finder for the checkout is
    # not loaded, and the wheel installed below comes first.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_dir = subprocess.run(
        [venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    borrowed = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    Path(site_dir, "borrowed-dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin/python", "install", "-q", "--no-deps", str(wheel)],
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


def last_audit(root: Path) -> dict:
    return json.loads((root / ".mindscape/audit.log").read_text().splitlines()[-1])


def test_init_from_an_invalid_file_writes_nothing(tmp_path):
    source = tmp_path / "mine.yaml"
    source.write_text("version: 1\nproject: mine\nservices:\n  redis: {port: 0}\n")
    result = run_cli("init", "shop", "--from", str(source), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{source}:4:17: services.redis.port: 0 is not a port" in result.stderr  # points into the user's file
    assert not (tmp_path / "shop").exists()
    source.write_text(source.read_text().replace("port: 0", "port: 6380"))
    again = run_cli("init", "shop", "--from", str(source), cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # no "already exists" from the failed attempt
    assert "project: shop" in (tmp_path / "shop/platform.yaml").read_text()


def test_init_force_replaces_the_platform_file_but_keeps_hand_edits(initialised):
    conf = initialised / "deploy/redis/redis.conf"
    conf.write_text(conf.read_text() + "# my tuning\n")
    result = run_cli("init", ".", "--force", "--name", "shop", cwd=initialised)
    assert result.returncode == 0, result.stderr
    assert conf.read_text().endswith("# my tuning\n")
    assert "kept 1 hand-edited" in result.stderr
    assert last_audit(initialised)["outcome"] == "hand-edited files kept"


def test_a_directory_in_place_of_a_generated_file_fails_cleanly(initialised):
    conf = initialised / "deploy/redis/redis.conf"
    conf.unlink()
    conf.mkdir()
    (conf / "inside").write_text("x")
    result = run_cli("render", cwd=initialised)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: cannot write deploy/redis/redis.conf: Is a directory" in result.stderr
    assert "hint:" in result.stderr
    assert last_audit(initialised)["outcome"].startswith("failed (exit 1): cannot write deploy/redis/redis.conf")


def test_an_unexpected_os_error_is_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    from mindscape_ops import cli
    from mindscape_ops.workspace import project

    def broken(files):
        raise IsADirectoryError(21, "Is a directory", str(tmp_path / "somewhere"))

    monkeypatch.setattr(project, "open_project", broken)
    monkeypatch.setattr(sys, "argv", ["mindscape", "validate"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'somewhere'}: Is a directory" in err and "Traceback" not in err


def test_a_wrongly_shaped_state_file_is_not_a_traceback(initialised):
    (initialised / ".mindscape/state.json").write_text('{"manifest": [], "ports": "5432", "up_cache": 1}')
    result = run_cli("render", cwd=initialised)
    assert result.returncode == 0, result.stderr
    assert run_cli("render", "--check", cwd=initialised).returncode == 0


def test_audit_outcome_of_a_failure_is_redacted(tmp_path):
    from mindscape_ops.cli.common import audited
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.workspace.store import Workspace

    workspace = Workspace(tmp_path)
    secret = workspace.ensure_secrets(["POSTGRES_PASSWORD"])["POSTGRES_PASSWORD"]
    with pytest.raises(OperationFailed), audited("backup") as record:
        record.workspace = workspace
        raise OperationFailed(f"restore into postgresql://app:{secret}@db/app failed")
    line = (tmp_path / ".mindscape/audit.log").read_text()
    assert secret not in line
    assert json.loads(line)["outcome"] == "failed (exit 1): restore into postgresql://app:***@db/app failed"


def test_render_keeping_hand_edits_audits_that_outcome(initialised):
    conf = initialised / "deploy/redis/redis.conf"
    conf.write_text(conf.read_text() + "# my tuning\n")
    assert run_cli("render", cwd=initialised).returncode == 1
    assert last_audit(initialised)["outcome"] == "hand-edited files kept"  # not a bare "failed (exit 1)"


def test_secrets_of_a_hand_written_platform_are_not_committable(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    result = run_cli("render", cwd=tmp_path)  # no init: the project has no .gitignore
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".mindscape/secrets.env").exists() and not (tmp_path / ".gitignore").exists()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path, capture_output=True, text=True
    )
    assert status.returncode == 0 and ".mindscape" not in status.stdout


def test_prepare_returns_what_it_did_and_honours_force(initialised):
    from mindscape_ops.provision.prepare import prepare
    from mindscape_ops.render import Status
    from mindscape_ops.workspace.project import open_project

    conf = initialised / "deploy/redis/redis.conf"
    conf.write_text(conf.read_text() + "# my tuning\n")
    project = open_project([initialised / "platform.yaml"])
    prepared = prepare(project)
    assert conf.read_text().endswith("# my tuning\n")
    assert {c.path: c.status for c in prepared.changes}["deploy/redis/redis.conf"] is Status.HAND_EDITED
    assert prepared.secrets == project.workspace.read_secrets()
    forced = prepare(project, force=True)
    assert not conf.read_text().endswith("# my tuning\n")
    assert [c.path for c in forced.changes if c.status is Status.HAND_EDITED] == ["deploy/redis/redis.conf"]


ALERTS = """version: 1
project: alerts
services:
  prometheus: {}
  alertmanager: {}
monitoring:
  receivers:
    - {name: team, kind: slack, secret_env: MS_TEST_SLACK_URL, channel: "#ops"}
"""


def test_a_receiver_without_its_secret_is_warned_about(tmp_path):
    (tmp_path / "platform.yaml").write_text(ALERTS)
    secret = tmp_path / ".mindscape/alertmanager/team"
    unset = run_cli("render", cwd=tmp_path)
    assert unset.returncode == 0, unset.stderr
    warning = "warning: receiver team: $MS_TEST_SLACK_URL is not set; alerts to it will fail until it is"
    assert warning in unset.stderr and secret.read_text() == ""
    made = run_cli("render", cwd=tmp_path, env={"MS_TEST_SLACK_URL": "https://hooks.example.com/T0"})
    assert "receiver team" not in made.stderr and secret.read_text() == "https://hooks.example.com/T0"
    kept = run_cli("render", cwd=tmp_path)  # unset again: the earlier value is kept and still works
    assert "receiver team" not in kept.stderr and secret.read_text() == "https://hooks.example.com/T0"
    init = run_cli("init", "again", "--from", str(tmp_path / "platform.yaml"), cwd=tmp_path)
    assert init.returncode == 0 and warning in init.stderr
