"""The secrets gates on disk: secrets.env is private to its owner, and no secret value is in
a rendered file or a file git tracks. Messages name files and keys, never values."""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Skipped

MIN_SECRET_LENGTH = 8  # shorter values match by chance: a user-set "admin" is in many files
MAX_FILE_BYTES = 16 << 20


def secrets_mode(ctx: CheckContext) -> str:
    path = ctx.project.workspace.secrets_file
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        from mindscape_ops.services.registry import BY_NAME

        if not any(BY_NAME[name].secrets for name in ctx.platform.services.enabled()):
            raise Skipped("no enabled service has secrets") from None
        raise Failed(f"{path} is missing", "`mindscape up` generates it") from None
    if mode != 0o600:
        raise Failed(f"{path.name} has mode {mode:04o}; only its owner may read it (0600)")
    return f"{path.name} has mode 0600"


def tracked_files(root: Path) -> list[str] | None:
    """Files git tracks under `root` (relative paths); None when it is not a git work tree."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached"], capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [name for name in done.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def leaks(root: Path, paths: Iterable[str], secrets: Mapping[str, str]) -> dict[str, list[str]]:
    """Which secret keys appear in which files: {path: [key, ...]}."""
    needles = {key: value.encode() for key, value in secrets.items() if len(value) >= MIN_SECRET_LENGTH}
    found: dict[str, list[str]] = {}
    for rel in sorted(set(paths)):
        path = root / rel
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        keys = [key for key, needle in needles.items() if needle in data]
        if keys:
            found[rel] = keys
    return found


def secrets_in_files(ctx: CheckContext) -> str:
    if not ctx.secrets:
        raise Skipped("no secrets generated yet")
    root = ctx.project.root
    tracked = tracked_files(root)
    manifest = ctx.project.workspace.read_state().get("manifest", {})
    paths = [*manifest, *(tracked or [])]  # the manifest lists every file render wrote
    found = leaks(root, paths, ctx.secrets)
    if found:
        listed = "; ".join(f"{path} holds {', '.join(keys)}" for path, keys in found.items())
        raise Failed(f"secret values found in {len(found)} file(s): {listed}")
    scope = (
        f"{len(set(paths))} rendered and git-tracked files"
        if tracked is not None
        else (f"{len(set(paths))} rendered files (not a git work tree: no tracked files to read)")
    )
    return f"no secret value in {scope}"
