"""Writing rendered files: compare with disk and the last manifest, then write atomically.

The manifest (in .mindscape/state.json) remembers the sha256 of what we last wrote, which
tells a stale file (still what we wrote; platform.yaml changed) from a hand-edited one
(someone changed it after us). Hand edits are never overwritten without --force.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass
from pathlib import Path

from mindscape_ops.adapters.files import atomic_write, cannot_write, sha256_text
from mindscape_ops.errors import OperationFailed
from mindscape_ops.render.marker import written_by_us


class Status(enum.StrEnum):
    UNCHANGED = "unchanged"
    MISSING = "missing"  # not on disk: will be created
    STALE = "stale"  # what we wrote last time, but platform.yaml now renders something else
    HAND_EDITED = "hand-edited"  # changed by someone since we wrote it
    ORPHANED = "orphaned"  # we wrote it once; platform.yaml no longer renders it


@dataclass(frozen=True)
class FileChange:
    path: str
    status: Status
    new_text: str | None  # None for orphaned files
    old_text: str | None  # None when missing

    @property
    def needs_write(self) -> bool:
        return self.status is not Status.UNCHANGED

    def diff(self) -> str:
        old = (self.old_text or "").splitlines(keepends=True)
        new = (self.new_text or "").splitlines(keepends=True)
        return "".join(difflib.unified_diff(old, new, f"a/{self.path}", f"b/{self.path}"))


def compare(root: Path, rendered: dict[str, str], manifest: dict[str, str]) -> list[FileChange]:
    """What writing `rendered` would change, file by file. Reads only.
    A recorded file that is neither rendered nor on disk any more gets no change: it is gone
    already, and `apply` drops it from the manifest."""
    changes = [_compare_one(root, path, text, manifest.get(path)) for path, text in rendered.items()]
    for path, recorded in sorted(manifest.items()):
        if path in rendered:
            continue
        target = root / path
        if target.is_file():
            old = _read(target)
            status = Status.ORPHANED if sha256_text(old) == recorded else Status.HAND_EDITED
            changes.append(FileChange(path, status, None, old))
    return changes


def _compare_one(root: Path, path: str, text: str, recorded: str | None) -> FileChange:
    target = root / path
    if not target.is_file():
        return FileChange(path, Status.MISSING, text, None)
    old = _read(target)
    if old == text:
        return FileChange(path, Status.UNCHANGED, text, old)
    ours = sha256_text(old) == recorded if recorded else _looks_generated(path, old)
    return FileChange(path, Status.STALE if ours else Status.HAND_EDITED, text, old)


def _looks_generated(path: str, text: str) -> bool:
    # No record (a fresh clone): the stamp on the marker line says whether the body is still
    # what we wrote; a JSON file has none, so it is kept.
    return written_by_us(text) is True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return ""


def apply(root: Path, changes: list[FileChange], manifest: dict[str, str], force: bool) -> dict[str, str]:
    """Write what changed; keep hand-edited files unless `force`. Returns the new manifest."""
    # Only paths `compare` had something to say about stay recorded: a forgotten entry would
    # keep the render fast path from ever trusting the manifest again.
    listed = {change.path for change in changes}
    new_manifest = {path: digest for path, digest in manifest.items() if path in listed}
    _refuse_paths_outside(root, [c.path for c in changes if c.needs_write or c.new_text is None])
    for change in changes:
        target = root / change.path
        if change.status is Status.HAND_EDITED and not force:
            continue
        if change.new_text is None:  # orphaned (or hand-edited orphan with force)
            try:
                target.unlink(missing_ok=True)
            except OSError as exc:
                raise cannot_write(change.path, exc, verb="remove") from None
            new_manifest.pop(change.path, None)
            continue
        if change.needs_write:
            try:
                atomic_write(target, change.new_text)
            except OSError as exc:
                raise cannot_write(change.path, exc) from None
        new_manifest[change.path] = sha256_text(change.new_text)
    return new_manifest


def _refuse_paths_outside(root: Path, paths: list[str]) -> None:
    """Every file we write or remove stays inside the project, even when a folder on the way
    is a symlink to somewhere else: checked for all paths before anything is written."""
    home = root.resolve()
    outside = [(path, (root / path).resolve()) for path in paths]
    outside = [(path, real) for path, real in outside if not real.is_relative_to(home)]
    if outside:
        shown = ", ".join(f"{path} -> {real}" for path, real in outside)
        raise OperationFailed(
            f"refusing to write outside the project {home}: {shown}",
            "a folder on the way is a symlink out of the project; remove it or point `paths:` elsewhere "
            "(nothing was written)",
        )
