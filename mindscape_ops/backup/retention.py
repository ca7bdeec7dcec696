"""What `prune` removes, decided purely (no I/O): from the backups, the policy and the time.

Per service (a redis backup never pushes a postgres one out): the newest `keep_last` are kept
and `max_age` removes older ones; whatever the policy says, each service's newest backup and
newest verified backup are kept (a policy must never leave a service with nothing restorable).
Objects of a backup without a manifest (a killed backup, a half-pruned one) are leftovers,
removed once older than a grace period (a backup may be running elsewhere into the same bucket).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


def decide(backups: Iterable[Backup], keep_last: int, max_age: timedelta | None, now: datetime) -> Decision:
    decision = Decision()
    by_service: dict[str, list[Backup]] = {}
    for backup in backups:
        by_service.setdefault(backup.service, []).append(backup)
    for items in by_service.values():
        items.sort(key=lambda b: (b.created, b.id), reverse=True)
        newest_verified = next((b.id for b in items if b.verified), None)
        for rank, backup in enumerate(items):
            age = now - backup.created
            if rank == 0:
                decision.keep[backup.id] = "the newest"
            elif backup.id == newest_verified:
                decision.keep[backup.id] = "the newest verified"
            elif rank >= keep_last:
                decision.remove[backup.id] = f"beyond keep_last {keep_last}"
            elif max_age is not None and age > max_age:
                decision.remove[backup.id] = f"older than max_age ({_days(age)})"
            else:
                decision.keep[backup.id] = f"among the newest {keep_last}"
    return decision


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
