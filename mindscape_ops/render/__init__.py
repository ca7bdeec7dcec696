"""render: platform -> generated files. `preview` reads only; `write` writes and records.

A fingerprint of what rendering depends on (the platform, the templates, our code) is kept
with the manifest: when it has not moved and every file on disk is what we wrote, nothing is
rendered at all, which keeps a no-op `mindscape up` fast.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from mindscape_ops import __version__
from mindscape_ops.adapters.files import sha256_text
from mindscape_ops.render.files import FileChange, Status, apply, compare
from mindscape_ops.workspace.store import Workspace

if TYPE_CHECKING:  # the no-op `up` imports render.resources: it must not load the models
    from mindscape_ops.config.loader import LoadedPlatform

__all__ = ["FileChange", "Status", "fingerprint", "preview", "write"]


def fingerprint(loaded: LoadedPlatform) -> str:
    from mindscape_ops.render import resources

    digest = hashlib.sha256(__version__.encode())
    digest.update(resources.code_and_templates_digest().encode())
    digest.update(json.dumps(loaded.platform.model_dump(mode="json", by_alias=True), sort_keys=True).encode())
    # Outside platform.yaml: the project's dependency files (the pip cache) and mindscape's source.
    from mindscape_ops.render.ci import dependency_files, resolve_install

    install = resolve_install(loaded.platform.ci.mindscape)
    from mindscape_ops.render.web_links import origin_base

    links = origin_base(loaded.root)  # the runbook links follow the git remote
    digest.update(json.dumps([dependency_files(loaded.root), install.requirement, links]).encode())
    return digest.hexdigest()


def _untouched(loaded: LoadedPlatform, manifest: dict[str, str]) -> list[FileChange] | None:
    """All-unchanged changes when every recorded file is on disk as we wrote it, else None."""
    changes = []
    for path, recorded in manifest.items():
        try:
            text = (loaded.root / path).read_text()
        except (OSError, UnicodeDecodeError):
            return None
        if sha256_text(text) != recorded:
            return None
        changes.append(FileChange(path, Status.UNCHANGED, text, text))
    return changes


def render_platform(platform, root=None) -> dict[str, str]:
    """`root`: the project folder, where the workflows look for dependency files."""
    # Jinja is imported only when something has to be rendered.
    from mindscape_ops.render.artifacts import render_platform as render_all

    return render_all(platform, root)


def preview(loaded: LoadedPlatform, workspace: Workspace) -> list[FileChange]:
    manifest = workspace.read_state().get("manifest", {})
    return compare(loaded.root, render_platform(loaded.platform, loaded.root), manifest)


def write(loaded: LoadedPlatform, workspace: Workspace, force: bool = False) -> list[FileChange]:
    state = workspace.read_state()
    manifest = state.get("manifest", {})
    current = fingerprint(loaded)
    if state.get("render_fingerprint") == current and manifest:
        untouched = _untouched(loaded, manifest)
        if untouched is not None:
            return untouched
    changes = compare(loaded.root, render_platform(loaded.platform, loaded.root), manifest)
    new_manifest = apply(loaded.root, changes, manifest, force)
    clean = not any(c.status is Status.HAND_EDITED for c in changes) or force
    recorded = current if clean else None  # hand edits kept: look again next time
    if new_manifest != manifest or state.get("render_fingerprint") != recorded:
        workspace.update_state(manifest=new_manifest, render_fingerprint=recorded)
    return changes
