"""`init` refuses what it cannot do before writing anything (no folder, no secrets, no files
left behind for a rerun to trip on); durations and sizes written as bare YAML numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError

from .conftest import EXAMPLES, run_cli


def refused(tmp_path: Path, *args: str) -> str:
    result = run_cli("init", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_bad_name_writes_nothing(tmp_path: Path):
    error = refused(tmp_path, "shop", "--name", "Bad Name!")
    assert "--name: 'Bad Name!' is not a valid name" in error
    assert not (tmp_path / "shop").exists()


def test_an_unreadable_source_writes_nothing(tmp_path: Path):
    (tmp_path / "folder").mkdir()
    assert "--from folder: cannot be read" in refused(tmp_path, "shop", "--from", "folder")
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nproject: caf\xe9\n")
    assert "--from latin1.yaml: cannot be read" in refused(tmp_path, "shop", "--from", "latin1.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "latin1.yaml"]


def test_a_folder_where_platform_yaml_goes_is_refused_even_with_force(tmp_path: Path):
    (tmp_path / "shop/platform.yaml").mkdir(parents=True)
    assert "shop/platform.yaml is a directory" in refused(tmp_path, "shop", "--force")
    # the folder existed, so the refusal is audited there; no secrets, no rendered file
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == [".mindscape", "platform.yaml"]
    assert not (tmp_path / "shop/.mindscape/secrets.env").exists()
    assert "failed (exit 2): shop/platform.yaml is a directory" in (tmp_path / "shop/.mindscape/audit.log").read_text()


def test_from_a_file_takes_its_services_under_the_new_name(tmp_path: Path):
    source = EXAMPLES / "local" / "platform.yaml"
    result = run_cli("init", "shop", "--from", str(source), "--name", "x1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = load([tmp_path / "shop/platform.yaml"], env={}).platform
    original = load([source], env={}).platform
    assert written.project == "x1"
    assert list(written.services.enabled()) == list(original.services.enabled())
    assert written.services.redis.image == original.services.redis.image


# -- bare numbers where a duration or a size goes ---------------------------------------------


def load_redis(tmp_path: Path, settings: str):
    (tmp_path / "platform.yaml").write_text(f"version: 1\nproject: t\nservices:\n  redis: {{{settings}}}\n")
    return load([tmp_path / "platform.yaml"], env={}).platform.services.redis


@pytest.mark.parametrize(
    ("written", "kept", "seconds"), [("30", "30s", 30), ("0.5", "500ms", 0.5), ("2.25", "2250ms", 2.25)]
)
def test_a_bare_number_is_a_duration_in_seconds(tmp_path: Path, written: str, kept: str, seconds: float):
    timeout = load_redis(tmp_path, f"health: {{timeout: {written}}}").health.timeout
    assert (timeout, timeout.seconds) == (kept, seconds)


@pytest.mark.parametrize(
    ("written", "problem"),
    [("-1", "a duration cannot be negative"), ("true", "expected a duration like 30s, 5m, 1h or 7d")],
)
def test_a_negative_or_boolean_duration_is_refused(tmp_path: Path, written: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        load_redis(tmp_path, f"health: {{timeout: {written}}}")
    assert caught.value.problems == [f"{tmp_path / 'platform.yaml'}:4:29: services.redis.health.timeout: {problem}"]


def test_a_bare_number_is_a_size_in_bytes(tmp_path: Path):
    maxmemory = load_redis(tmp_path, "maxmemory: 1048576").maxmemory
    assert (maxmemory, maxmemory.bytes, maxmemory.nginx) == ("1048576", 1048576, "1048576")
