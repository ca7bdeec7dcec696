"""The builder's two subprocesses, for real and offline: `go` building a program of a recipe (from
a module proxy in a folder) and failing with its log, and debootstrap failing with its log
and leaving no work folder behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mindscape_ops.errors import OperationFailed
from mindscape_ops.images import gobuild, rootfs
from mindscape_ops.images.recipe import parse_recipe

from .conftest import need

pytestmark = pytest.mark.tools

PROGRAM = 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hello from tiny\\n") }\n'


def module_proxy(root: Path, source: str, monkeypatch) -> None:
    """A Go module proxy in a folder (GOPROXY=file://...) serving example.com/tiny v0.1.0."""
    import zipfile

    versions = root / "proxy" / "example.com" / "tiny" / "@v"
    versions.mkdir(parents=True)
    go_mod = "module example.com/tiny\n\ngo 1.22\n"
    (versions / "list").write_text("v0.1.0\n")
    (versions / "v0.1.0.info").write_text('{"Version": "v0.1.0", "Time": "2024-01-01T00:00:00Z"}')
    (versions / "v0.1.0.mod").write_text(go_mod)
    with zipfile.ZipFile(versions / "v0.1.0.zip", "w") as archive:
        archive.writestr("example.com/tiny@v0.1.0/go.mod", go_mod)
        archive.writestr("example.com/tiny@v0.1.0/cmd/tiny/main.go", source)
    monkeypatch.setenv("GOPROXY", f"file://{root / 'proxy'}")
    monkeypatch.setenv("GOSUMDB", "off")


def tiny_recipe(mode: str):
    go = {"module": "example.com/tiny", "package": "cmd/tiny", "version": "v0.1.0", "mode": mode}
    return parse_recipe("tiny", {"version": "0.1", "go": go}, "tiny.toml")


@pytest.fixture
def go():
    if gobuild.go_version() is None:
        need("go is not installed (setup-test-env needs it: golang-go >= 1.22)")


@pytest.mark.parametrize("mode", ["install", "tool"])
def test_a_go_program_is_built_once_then_found_in_the_cache(go, tmp_path: Path, monkeypatch, mode: str):
    import subprocess

    module_proxy(tmp_path, PROGRAM, monkeypatch)
    recipe = tiny_recipe(mode)
    built = gobuild.build(tmp_path / "cache", recipe)
    assert built.name == "tiny" and os.access(built, os.X_OK) and gobuild.is_built(tmp_path / "cache", recipe)
    assert subprocess.run([built], capture_output=True, text=True).stdout == "hello from tiny\n"
    assert gobuild.build(tmp_path / "cache", recipe) == built  # from the cache
    assert not list(built.parent.glob("*.partial"))


def test_a_failed_go_build_says_so_with_its_log(go, tmp_path: Path, monkeypatch):
    module_proxy(tmp_path, "package main\n\nfunc main() { undefined() }\n", monkeypatch)
    recipe = tiny_recipe("install")
    with pytest.raises(OperationFailed) as failed:
        gobuild.build(tmp_path / "cache", recipe)
    message = failed.value.message
    assert message.startswith("tiny: go install of example.com/tiny/cmd/tiny failed (full log: ")
    assert "undefined: undefined" in message
    assert not gobuild.is_built(tmp_path / "cache", recipe)


def test_a_failed_debootstrap_says_so_and_leaves_no_work_folder(tmp_path: Path, monkeypatch):
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        need("debootstrap as root (setup-test-env installs it)")
    monkeypatch.setenv("MINDSCAPE_DEBIAN_MIRROR", f"file://{tmp_path}/no-mirror-here")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    said = []
    with pytest.raises(OperationFailed) as failed:
        rootfs._debootstrap(None, "unused/base:rootfs-x", cache, "x", ["ca-certificates"], said.append)
    assert failed.value.message.startswith(f"debootstrap failed (full log: {cache / 'debootstrap.log'})")
    assert said and said[0].startswith("debootstrap bookworm (1 packages) from file://")
    assert list((tmp_path / "tmp").iterdir()) == []  # the work folder went, mounts and all
    assert not list(cache.glob("rootfs-*"))
