"""`--target kubernetes` of render and up: the checks they share and `up`'s apply. Loaded only
when asked, so the Docker path never imports the Kubernetes client."""

from __future__ import annotations

from pathlib import Path

from mindscape_ops.cli.common import audited, console, lock_root, open_project
from mindscape_ops.errors import UsageError

TARGETS = ("compose", "kubernetes")


def check_target(target: str | None) -> None:
    if target is not None and target not in TARGETS:
        raise UsageError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")


def require_section(project) -> None:
    """deploy/kubernetes/ follows the `kubernetes:` section, so that plain `render` and a fresh
    clone's `render --check` keep it too."""
    if project.platform.kubernetes is None:
        raise UsageError(
            "--target kubernetes: platform.yaml has no `kubernetes:` section",
            "add `kubernetes: {}` to platform.yaml (its settings: docs/platform-yaml.md), then run again",
        )


def up(
    files: list[Path] | None,
    target: str | None,
    context: str | None,
    dry_run: str | None,
    services: list[str] | None,
) -> None:
    check_target(target)
    if target != "kubernetes":
        raise UsageError("--context and --dry-run go with --target kubernetes")
    if dry_run not in (None, "server"):
        raise UsageError(f"--dry-run={dry_run}: only --dry-run=server is supported (the API server checks it all)")
    if services:
        raise UsageError("up SERVICE... is for Docker: --target kubernetes applies the whole platform")
    from mindscape_ops.adapters import kubernetes as cluster
    from mindscape_ops.provision.prepare import prepare
    from mindscape_ops.render.kubernetes import cluster_objects

    err = console(stderr=True)
    with audited("up", lock_root(files), target=target, context=context, dry_run=dry_run) as record:
        record.project = project = open_project(files)
        require_section(project)
        dynamic = cluster.connect(context)  # no cluster: fail before anything is written
        prepared = prepare(project)
        for warning in prepared.warnings:
            err.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
        objects = cluster_objects(project.platform, project.root, prepared.secrets)
        verb = "checked (server dry run)" if dry_run else "applied"
        count = cluster.apply(
            dynamic,
            objects,
            project.platform.kubernetes.field_manager,
            dry_run=bool(dry_run),
            report=lambda what: err.print(f"[green]{verb}[/] {what}", highlight=False),
        )
        namespace = objects[0]["metadata"]["name"]
        err.print(f"[green]{count} object(s) {verb}[/] in namespace {namespace} ({project.platform.environment})")
