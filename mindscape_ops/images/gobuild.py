"""Go programs for the local images, built with this machine's `go` (no cgo, -trimpath) and cached
by what goes into them: MINDSCAPE_CACHE/go/bin/<hash of module, package, version, mode, flags,
replace lines and Go version>. GOCACHE, GOMODCACHE and GOPATH live under MINDSCAPE_CACHE/go too."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
from mindscape_ops.images.recipe import GoProgram, Recipe


@cache
def go_version() -> str | None:
    """`go env GOVERSION`, or None without a usable go."""
    if not shutil.which("go"):
        return None
    done = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def need_go(recipe: Recipe) -> str:
    version = go_version()
    if version is None:
        raise EnvironmentUnusable(
            f"{recipe.tag()} is built from its Go module, and there is no go command",
            f"install Go (>= 1.22, e.g. `apt-get install golang-go`), then `mindscape images build {recipe.service}`",
        )
    return version


def binary_path(cache_root: Path, go: GoProgram, version: str) -> Path:
    # the key the shell builder used (an `echo` of these words), so its cached binaries are found
    key_text = f"{go.mode} {go.target}@{go.version} ldflags={go.ldflags} replace={' '.join(go.replace)} {version}\n"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    return cache_root / "go" / "bin" / key / Path(go.binary).name


def is_built(cache_root: Path, recipe: Recipe) -> bool:
    version = go_version()
    return bool(recipe.go and version and binary_path(cache_root, recipe.go, version).is_file())


def build(cache_root: Path, recipe: Recipe) -> Path:
    """The built binary (from the cache when there)."""
    assert recipe.go is not None
    from filelock import FileLock

    go, version = recipe.go, need_go(recipe)
    out = binary_path(cache_root, go, version)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # its own lock, not the cache's: two builds of one program take turns (the second finds it
    # built), while the engine's imports and other programs' compiles go on
    with FileLock(str(out.parent.with_name(out.parent.name + ".lock"))):
        return out if out.is_file() else _compile(cache_root, recipe, out)


def _compile(cache_root: Path, recipe: Recipe, out: Path) -> Path:
    assert recipe.go is not None
    go = recipe.go
    root = cache_root / "go"
    log = root / f"{recipe.service}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    gobin = out.parent / ".partial"
    env = {
        **os.environ,
        "GOCACHE": str(root / "build"),
        "GOMODCACHE": str(root / "mod"),
        "GOPATH": str(root / "path"),
        "GOFLAGS": "-modcacherw -buildvcs=false",
        "CGO_ENABLED": "0",
        "GOBIN": str(gobin),
    }
    flags = ["-trimpath", f"-ldflags=-s -w {go.ldflags}".rstrip()]
    partial = out.with_name(out.name + ".partial")
    with log.open("w") as output:
        if go.mode == "install":
            _go([["install", *flags, f"{go.target}@{go.version}"]], root, env, output, recipe, log)
            shutil.move(gobin / go.package.rsplit("/", 1)[-1], partial)
        else:
            module = root / "tool" / out.parent.name
            shutil.rmtree(module, ignore_errors=True)
            module.mkdir(parents=True)
            steps = [["mod", "init", f"mindscape.local/build/{recipe.service}"]]
            steps += [["mod", "edit", "-replace", line] for line in go.replace]
            steps += [["get", "-tool", f"{go.target}@{go.version}"], ["build", *flags, "-o", str(partial), go.target]]
            _go(steps, module, env, output, recipe, log)
    shutil.rmtree(gobin, ignore_errors=True)
    partial.chmod(0o755)
    partial.rename(out)
    return out


def _go(steps: list[list[str]], cwd: Path, env: dict[str, str], output, recipe: Recipe, log: Path) -> None:
    for step in steps:
        output.write(f"$ go {' '.join(step)}\n")
        output.flush()
        if subprocess.run(["go", *step], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT).returncode:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise OperationFailed(
                f"{recipe.service}: go {step[0]} of {recipe.go.target} failed (full log: {log}):\n{tail}"
            )
