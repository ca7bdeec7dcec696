"""Which folder owns a project's containers and volumes.

`project:` names everything, so two folders with the same `project:` would share containers:
`down` in one would remove the other's without a word. Each container and volume is labelled
with the id of the workspace (the .mindscape/ folder) that made it and its path; a command
refuses to touch those another folder made, and names that folder. A container from the same
path is ours even if .mindscape/ was made anew; one made before these labels existed is ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mindscape_ops.errors import OperationFailed
from mindscape_ops.workspace.project import Project

LABEL_WORKSPACE = "io.mindscape.workspace"
LABEL_WORKSPACE_PATH = "io.mindscape.workspace-path"


def workspace_labels(project: Project) -> dict[str, str]:
    return {
        LABEL_WORKSPACE: project.workspace.workspace_id(create=True) or "",
        LABEL_WORKSPACE_PATH: str(project.root.resolve()),
    }


def owner_elsewhere(project: Project, labels: Mapping[str, str]) -> str | None:
    """The folder that owns a resource with these labels, when it is not this project's."""
    owner, path = labels.get(LABEL_WORKSPACE), labels.get(LABEL_WORKSPACE_PATH)
    if not owner or path == str(project.root.resolve()) or owner == project.workspace.workspace_id():
        return None
    return path or f"workspace {owner}"


def refuse_others(project: Project, resources: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    """Raise, before anything changes, when any (name, labels) belongs to another folder."""
    others: dict[str, list[str]] = {}
    for name, labels in resources:
        folder = owner_elsewhere(project, labels)
        if folder:
            others.setdefault(folder, []).append(name)
    if others:
        folder, names = next(iter(others.items()))
        raise OperationFailed(
            f"project {project.platform.project!r} belongs to another folder, {folder} "
            f"({', '.join(sorted(names))}); nothing was changed",
            f"give this platform its own `project:` name in platform.yaml, or run mindscape in {folder}",
        )
