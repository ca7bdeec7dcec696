"""render: platform -> generated files. `preview` reads only; `write` writes and records."""

from __future__ import annotations

from ..config import LoadedPlatform
from ..workspace import Workspace
from .artifacts import render_platform
from .files import FileChange, Status, apply, compare

__all__ = ["FileChange", "Status", "preview", "write"]


def preview(loaded: LoadedPlatform, workspace: Workspace) -> list[FileChange]:
    manifest = workspace.read_state().get("manifest", {})
    return compare(loaded.root, render_platform(loaded.platform), manifest)


def write(loaded: LoadedPlatform, workspace: Workspace, force: bool = False) -> list[FileChange]:
    manifest = workspace.read_state().get("manifest", {})
    changes = compare(loaded.root, render_platform(loaded.platform), manifest)
    new_manifest = apply(loaded.root, changes, manifest, force)
    if new_manifest != manifest or not workspace.state_file.exists():
        workspace.update_state(manifest=new_manifest)
    return changes
