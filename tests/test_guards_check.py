"""Guards against bugs a developer would plant in `mindscape check`, engine-free: `--skip`
leaves its group out on a valid platform, through the library and through the command line
the rendered CI runs (`--skip backups` when backups go to S3)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from mindscape_ops.check import gates

from .conftest import run_cli

LOCAL = "version: 1\nproject: guards\nservices: {postgres: {}}\n"
# an endpoint nothing answers: a backups gate that ran anyway would fail the check
S3 = LOCAL + "backups: {s3: {bucket: guards-backups, endpoint_url: 'http://127.0.0.1:9'}}\n"


def test_skip_leaves_its_group_out_of_a_valid_platform_check(tmp_path: Path):
    path = tmp_path / "platform.yaml"
    path.write_text(LOCAL)
    both = gates.check([path], only=("config", "backups"))
    assert {r.id for r in both} >= {"config.valid", "backups.destination"}  # the group is there to skip
    skipped = gates.check([path], only=("config", "backups"), skip=("backups",))
    assert {r.group for r in skipped} == {"config"}


def test_the_check_the_rendered_ci_runs_leaves_backups_out(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(S3)
    assert run_cli("render", cwd=tmp_path).returncode == 0
    workflow = (tmp_path / ".github" / "workflows" / "ci.yml").read_text()
    [line] = [line.strip() for line in workflow.splitlines() if line.strip().startswith("mindscape check ")]
    args = shlex.split(line)[2:]
    assert args[-2:] == ["--skip", "backups"], line
    (tmp_path / "reports").mkdir()
    done = run_cli("check", *args, "--only", "config", "--only", "backups", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [row["id"] for row in json.loads(done.stdout)] == ["config.valid", "config.rendered"]


def rendered_status(root: Path) -> tuple[int, dict]:
    done = run_cli("check", "--only", "config", "--json", cwd=root)
    return done.returncode, {row["id"]: row for row in json.loads(done.stdout)}["config.rendered"]


def test_rendered_is_skipped_only_where_nothing_rendered_is(tmp_path: Path):
    """platform.yaml alone (the ops image of the cluster's Jobs): nothing to compare, skipped.
    A file missing where the others are, with or without a render record (a fresh clone has
    none), still fails."""
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "platform.yaml").write_text(LOCAL)
    code, row = rendered_status(alone)
    assert (code, row["status"]) == (0, "skip"), row
    assert "as in the ops image" in row["message"]

    rendered = tmp_path / "rendered"
    rendered.mkdir()
    (rendered / "platform.yaml").write_text(LOCAL)
    assert run_cli("render", cwd=rendered).returncode == 0
    assert rendered_status(rendered)[1]["status"] == "pass"
    missing = next(p for p in sorted((rendered / "deploy").rglob("*")) if p.is_file())
    missing.unlink()
    code, row = rendered_status(rendered)
    assert (code, row["status"]) == (1, "fail") and "missing" in row["message"], row
    shutil.rmtree(rendered / ".mindscape")  # a fresh clone: no render record
    code, row = rendered_status(rendered)
    assert (code, row["status"]) == (1, "fail"), row


def test_skip_also_rules_an_invalid_platforms_one_result(tmp_path: Path):
    """On an invalid platform config.valid is the only gate: reported failing unless its group is
    skipped, when the configuration error itself is raised (the command's exit 2)."""
    import pytest

    from mindscape_ops.errors import ConfigError

    path = tmp_path / "platform.yaml"
    path.write_text("version: 1\nproject: guards\nservices:\n  redis: {maxmemory: lots}\n")
    [result] = gates.check([path], skip=("backups",))
    assert result.id == "config.valid" and result.status.value == "fail"
    with pytest.raises(ConfigError):
        gates.check([path], skip=("config",))
    with pytest.raises(ConfigError):
        gates.check([path], only=("backups",))
