"""Odd things handed to mindscape as input: devices, pipes, huge files, symlinks out of the
project. Each gets a clear error (exit 2) at once, never a hang, a traceback or a write
outside the project."""

from __future__ import annotations

import os
import time

import pytest

from .conftest import EXAMPLES, run_cli


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_at_once(tmp_path, device):
    started = time.monotonic()
    result = run_cli("validate", "-f", device, cwd=tmp_path, timeout=20)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{device} is not a regular file" in result.stderr
    assert time.monotonic() - started < 10


def test_a_fifo_with_no_writer_does_not_hang(tmp_path):
    fifo = tmp_path / "platform.yaml"
    os.mkfifo(fifo)
    result = run_cli("validate", "-f", str(fifo), cwd=tmp_path, timeout=20)
    assert result.returncode == 2 and "is not a regular file" in result.stderr


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "platform.yaml"
    big.write_text("version: 1\nproject: big\n# " + "x" * (2 << 20) + "\n")
    started = time.monotonic()
    result = run_cli("validate", "-f", str(big), cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and "larger than 1 MiB" in result.stderr
    assert time.monotonic() - started < 10


def test_a_normal_file_still_loads(tmp_path):
    result = run_cli("validate", "-f", str(EXAMPLES / "minimal" / "platform.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_render_refuses_a_symlink_out_of_the_project_and_writes_nothing(tmp_path):
    project, elsewhere = tmp_path / "shop", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    (project / "deploy").symlink_to(elsewhere, target_is_directory=True)
    result = run_cli("render", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "refusing to write outside the project" in result.stderr and "deploy/" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (project / ".github").exists()  # checked before anything was written


def test_platform_yaml_is_found_in_the_nearest_parent_like_git_finds_its_repository(tmp_path):
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    deeper = tmp_path / "src" / "app"
    deeper.mkdir(parents=True)
    result = run_cli("validate", cwd=deeper)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "platform.yaml") in result.stdout
    rendered = run_cli("render", cwd=deeper)
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "deploy" / "compose.yaml").exists() and not (deeper / "deploy").exists()
