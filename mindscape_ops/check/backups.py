"""backups gates, from `mindscape backup`'s own listing: the newest complete backup of each
backed-up service is younger than the schedule plus a grace period, it has been verified,
and the destination (local folder or S3) answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped
from mindscape_ops.settings.schedule import last_run

# A scheduled backup takes a while, and CI schedules start late: this long after the schedule
# fires, its backup must be there.
GRACE = timedelta(hours=1)


def _services(ctx: CheckContext) -> list[str]:
    backups = ctx.platform.backups
    if not backups.enabled:
        raise Skipped("backups.enabled is false")
    services = ctx.platform.backup_services
    if not services:
        raise Skipped("no service to back up (neither postgres nor redis is enabled)")
    return services


def _listing(ctx: CheckContext) -> list[Any]:
    from mindscape_ops.backup.actions import listing

    return ctx.once("backups", lambda: listing(ctx.project))


def newest_by_service(listed: Sequence[Any], services: Sequence[str]) -> dict[str, Any]:
    """Pure: each service's newest listed backup (the listing is newest first); absent: none."""
    newest: dict[str, Any] = {}
    for item in listed:
        newest.setdefault(item.manifest.service, item)
    return {s: newest[s] for s in services if s in newest}


def staleness(newest: dict[str, Any], services: Sequence[str], due: datetime | None, now: datetime) -> list[str]:
    """Pure: which services have no backup, or none since the schedule last fired (minus grace)."""
    problems = []
    for service in services:
        item = newest.get(service)
        if item is None:
            problems.append(f"{service}: no backup yet")
        elif due is not None and item.manifest.created < due:
            age = _age(now - item.manifest.created)
            problems.append(
                f"{service}: newest backup {item.manifest.id} is {age} old (due since {due:%Y-%m-%d %H:%M}Z)"
            )
    return problems


def fresh(ctx: CheckContext) -> str:
    services = _services(ctx)
    schedule = ctx.platform.backups.schedule
    now = datetime.now(UTC)
    due = last_run(schedule, now - GRACE)
    newest = newest_by_service(_listing(ctx), services)
    problems = staleness(newest, services, due, now)
    if problems:
        raise Failed("; ".join(problems) + f" (schedule {schedule!r} + {_age(GRACE)} grace)")
    ages = ", ".join(f"{s} {_age(now - newest[s].manifest.created)} old" for s in services)
    return f"{ages} (schedule {schedule!r} + {_age(GRACE)} grace)"


def unverified(newest: dict[str, Any], services: Sequence[str]) -> list[str]:
    """Pure: services whose newest backup has no successful verification."""
    problems = []
    for service in services:
        item = newest.get(service)
        if item is None:
            problems.append(f"{service}: no backup to verify")
        elif item.verification is None:
            problems.append(f"{service}: {item.manifest.id} never verified")
        elif not item.verification.ok:
            problems.append(f"{service}: {item.manifest.id} failed verification: {item.verification.detail}")
    return problems


def verified(ctx: CheckContext) -> str:
    services = _services(ctx)
    newest = newest_by_service(_listing(ctx), services)
    problems = unverified(newest, services)
    if problems:
        raise Failed("; ".join(problems), "`mindscape backup verify ID` for each backup named")
    return ", ".join(f"{s} {newest[s].manifest.id} verified {newest[s].verification.verified_at}" for s in services)


def destination(ctx: CheckContext) -> str:
    from mindscape_ops.backup.stores import open_store

    _services(ctx)
    store = open_store(ctx.project)
    try:
        names = store.names()
    except OSError as exc:
        raise Failed(f"{store.where}: {exc.strerror or exc}") from None
    return f"{store.where} answers ({len(names)} objects)"


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


GATES = (
    Gate("backups.fresh", fresh, "`mindscape backup create`; check that the scheduled backup workflow runs"),
    Gate("backups.verified", verified, "`mindscape backup verify ID` (`mindscape backup list` shows the ids)"),
    Gate(
        "backups.destination",
        destination,
        "local: the backups folder must be readable; S3: check the bucket, region and AWS credentials",
    ),
)
