"""What `prune` removes, decided purely (no I/O): from the backups, the policy and the time.

Per service (a redis backup never pushes a postgres one out): the newest `keep_last` are kept
and `max_age` removes older ones. `keep_daily`, `keep_weekly` and `keep_monthly` (as restic's
and borg's) also keep the newest backup of each of the last N days / ISO weeks / months (UTC)
that have a backup, however old. Whatever the policy says, each service's newest backup and
newest verified backup are kept (a policy must never leave a service with nothing restorable).
Objects of a backup without a manifest (a killed backup, a half-pruned one) are leftovers,
removed once older than a grace period (a backup may be running elsewhere into the same bucket).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

LEFTOVER_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Backup:
    id: str
    service: str
    created: datetime
    verified: bool = False


@dataclass(frozen=True)
class Decision:
    keep: dict[str, str] = field(default_factory=dict)  # id -> why
    remove: dict[str, str] = field(default_factory=dict)  # id -> why


@dataclass(frozen=True)
class Policy:
    keep_last: int = 7
    max_age: timedelta | None = None
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0


# (setting, the period a backup falls in, how the reason names it)
_PERIODS = (
    ("keep_daily", lambda t: t.date().isoformat(), "day"),
    ("keep_weekly", lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2]), "week"),
    ("keep_monthly", lambda t: f"{t:%Y-%m}", "month"),
)


def periodic(items: list[Backup], policy: Policy) -> dict[str, list[str]]:
    """id -> why, for the newest backup of each of the last N periods that have one (items newest first)."""
    kept: dict[str, list[str]] = {}
    for setting, period_of, name in _PERIODS:
        wanted = getattr(policy, setting)
        seen: set[str] = set()
        for backup in items:
            if len(seen) >= wanted:
                break
            period = period_of(backup.created.astimezone(UTC))
            if period not in seen:
                seen.add(period)
                kept.setdefault(backup.id, []).append(f"the newest of {name} {period} ({setting} {wanted})")
    return kept


def decide(backups: Iterable[Backup], policy: Policy, now: datetime) -> Decision:
    decision = Decision()
    by_service: dict[str, list[Backup]] = {}
    for backup in backups:
        by_service.setdefault(backup.service, []).append(backup)
    for items in by_service.values():
        items.sort(key=lambda b: (b.created, b.id), reverse=True)
        newest_verified = next((b.id for b in items if b.verified), None)
        by_period = periodic(items, policy)
        for rank, backup in enumerate(items):
            age = now - backup.created
            if rank == 0:
                decision.keep[backup.id] = "the newest"
            elif backup.id == newest_verified:
                decision.keep[backup.id] = "the newest verified"
            elif rank < policy.keep_last and (policy.max_age is None or age <= policy.max_age):
                decision.keep[backup.id] = f"among the newest {policy.keep_last}"
            elif backup.id in by_period:
                decision.keep[backup.id] = "; ".join(by_period[backup.id])
            elif rank >= policy.keep_last:
                decision.remove[backup.id] = f"beyond keep_last {policy.keep_last}" + _nor(policy)
            else:
                decision.remove[backup.id] = f"older than max_age ({_days(age)})" + _nor(policy)
    return decision


def _nor(policy: Policy) -> str:
    """Why no keep_daily/weekly/monthly saved it, when one is set."""
    settings = [setting for setting, _, _ in _PERIODS if getattr(policy, setting)]
    return f", not kept by {'/'.join(settings)}" if settings else ""


def leftovers(
    objects: Mapping[str, float], complete: set[str], id_of, now: datetime, grace: timedelta = LEFTOVER_GRACE
) -> list[str]:
    """Object names (with their modified time, epoch seconds) of ours (`id_of` names their
    backup; other files are never touched) that belong to no complete backup, older than `grace`."""
    cutoff = (now - grace).timestamp()
    return sorted(
        name
        for name, modified in objects.items()
        if id_of(name) is not None and id_of(name) not in complete and modified < cutoff
    )


def _days(age: timedelta) -> str:
    return f"{age.days}d" if age.days else f"{int(age.total_seconds() // 3600)}h"
