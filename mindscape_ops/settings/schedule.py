"""Cron schedules read as GitHub Actions reads them (UTC): when one last fired (what the backups
gate holds the newest backup against) and the longest wait between two of its runs (what the
backup-age alert allows). Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mindscape_ops.settings.types import Duration

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
LOOK_BACK_DAYS = 366 * 5  # covers any schedule that can fire at all (29 February included)


def values(text: str, low: int, high: int) -> set[int]:
    """One cron field (already validated by the config) as the set of values it matches."""
    found: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        else:
            start, _, end = base.partition("-")
            first = int(start)
            last = int(end) if end else (high if step_text else first)
        found.update(range(first, last + 1, step))
    return found


def _day_matches(day: datetime, fields: list[str], dom: set[int], dow: set[int]) -> bool:
    cron_weekday = (day.weekday() + 1) % 7  # cron: Sunday 0
    dom_any, dow_any = fields[2] == "*", fields[4] == "*"
    if dom_any or dow_any:  # one restricted: it alone decides; both restricted: either (cron's rule)
        return (dom_any or day.day in dom) and (dow_any or cron_weekday in dow)
    return day.day in dom or cron_weekday in dow


def last_run(schedule: str, at: datetime) -> datetime | None:
    """The latest time at or before `at` when `schedule` fires (None: not in five years)."""
    fields = MACROS.get(schedule, schedule).split()
    minute, hour, dom, month, dow = (values(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True))
    at = at.astimezone(UTC).replace(second=0, microsecond=0)
    for offset in range(LOOK_BACK_DAYS):
        day = at - timedelta(days=offset)
        if day.month not in month or not _day_matches(day, fields, dom, dow):
            continue
        for h in sorted(hour, reverse=True):
            for m in sorted(minute, reverse=True):
                fired = day.replace(hour=h, minute=m)
                if fired <= at:
                    return fired
    return None


# Five years from a Monday (two 29 Februaries): every gap a schedule can have, twice.
_GAP_START = datetime(2024, 1, 1, tzinfo=UTC)
BACKUP_GRACE_S = 2 * 3600  # a backup's own run time, a runner that starts late


def longest_gap(schedule: str) -> float | None:
    """Seconds of the longest wait between two consecutive runs of `schedule` (None: it never
    fires). A day that matches fires at the same times as any other, so days are walked, not
    minutes."""
    fields = MACROS.get(schedule, schedule).split()
    minute, hour, dom, month, dow = (values(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True))
    times = sorted(h * 3600 + m * 60 for h in hour for m in minute)  # seconds into a matching day
    if not times:
        return None
    gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0)
    days = [
        offset
        for offset in range(LOOK_BACK_DAYS)
        if (day := _GAP_START + timedelta(days=offset)).month in month and _day_matches(day, fields, dom, dow)
    ]
    if not days:
        return None
    for a, b in zip(days, days[1:], strict=False):
        gap = max(gap, (b - a) * 86400 + times[0] - times[-1])
    return float(gap)


def shortest_gap(schedule: str) -> float | None:
    """Seconds of the shortest wait between two consecutive runs of `schedule` (None: it never
    fires), walked as longest_gap walks them."""
    fields = MACROS.get(schedule, schedule).split()
    minute, hour, dom, month, dow = (values(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True))
    times = sorted(h * 3600 + m * 60 for h in hour for m in minute)
    days = [
        offset
        for offset in range(LOOK_BACK_DAYS)
        if (day := _GAP_START + timedelta(days=offset)).month in month and _day_matches(day, fields, dom, dow)
    ]
    if not times or not days:
        return None
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    gaps += [(b - a) * 86400 + times[0] - times[-1] for a, b in zip(days, days[1:], strict=False)]
    return float(min(gaps)) if gaps else None


def backup_age_limit(configured: Duration | None, schedule: str) -> float:
    """Seconds a backup may be old before BackupTooOld fires: the setting, else the schedule's
    longest gap plus BACKUP_GRACE_S (a weekday schedule waits 3 days over each weekend)."""
    if configured is not None:
        return configured.seconds
    gap = longest_gap(schedule)
    return (gap if gap is not None else 24 * 3600) + BACKUP_GRACE_S
