"""Which gates a project has, and running them: the library call behind `mindscape check`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mindscape_ops.check import backups, config, database, security
from mindscape_ops.check import services as service_gates
from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Gate, Result, Status, by_group, run_gates, select
from mindscape_ops.errors import ConfigError


def project_gates(ctx: CheckContext) -> list[Gate]:
    """The platform-wide gates, each enabled service's (its readiness, its ServiceDef.gates),
    and every service's platform_gates (whether or not it is enabled); the report groups them
    by area."""
    from mindscape_ops.services.registry import SERVICES

    return [
        *config.GATES,
        *service_gates.gates(ctx.platform.services.enabled()),
        *database.GATES,
        *security.GATES,
        *(gate for service in SERVICES for gate in service.platform_gates),
        *backups.GATES,
    ]


def check(files: Iterable[Path] | None, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Result]:
    """Open the project and run its gates (those of the `only` groups, minus `skip`); the
    results come grouped by area. An invalid platform.yaml is config.valid failing; nothing
    else can be checked then."""
    from mindscape_ops.workspace.project import open_project
    from mindscape_ops.workspace.store import redact

    try:
        project = open_project(list(files) if files else None)
    except ConfigError as exc:
        return invalid_platform(exc, only, skip)
    ctx = CheckContext(project)
    secrets = set(ctx.secrets.values())
    gates = select(project_gates(ctx), only, skip)
    results = run_gates(gates, ctx, redact=lambda text: redact(text, secrets))
    return [result for rows in by_group(results).values() for result in rows]


def invalid_platform(exc: ConfigError, only: Iterable[str], skip: Iterable[str]) -> list[Result]:
    if "config" not in select_groups(only, skip):
        raise exc
    failed = config.invalid(exc.problems)
    gate = config.GATES[0]
    return [Result(gate.id, gate.group, Status.FAIL, gate.severity, failed.message, gate.remedy, 0)]


def select_groups(only: Iterable[str], skip: Iterable[str]) -> set[str]:
    from mindscape_ops.check.model import GROUPS

    only, skip = set(only), set(skip)
    return {g for g in GROUPS if (not only or g in only) and g not in skip}
