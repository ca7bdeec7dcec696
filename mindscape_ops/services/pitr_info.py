"""What pgBackRest's repository holds (backups.pitr), read from `pgbackrest info --output=json`:
the physical backups, the restorable window they and the archived WAL give, and whether that
window keeps what backups.pitr promises (the `backups.restorable_window` gate). Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mindscape_ops.errors import OperationFailed
from mindscape_ops.services.contract import Failed
from mindscape_ops.services.pitr import explain
from mindscape_ops.services.pitr_alerts import BACKUPS_METRIC, FULL_BACKUP_METRIC, SINCE_METRIC, WINDOW_START_METRIC
from mindscape_ops.settings.schedule import BACKUP_GRACE_S, last_run

if TYPE_CHECKING:
    from mindscape_ops.config.backups import Pitr

# pgbackrest info's stanza status codes that still list backups: ok, none yet, a backup or expire running
_USABLE = (0, 2, 6)
GRACE = timedelta(hours=1)  # a scheduled backup's own run time, a runner that starts late


@dataclass(frozen=True)
class PhysicalBackup:
    label: str
    kind: str  # full, diff, incr
    started: datetime
    stopped: datetime
    size: int  # of the database when it was taken
    stored: int  # in the repository (compressed, and only what changed for diff/incr)
    wal_start: str
    wal_stop: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.label,
            "kind": "physical",
            "type": self.kind,
            "started_at": self.started.isoformat(timespec="seconds"),
            "stopped_at": self.stopped.isoformat(timespec="seconds"),
            "size": self.size,
            "stored": self.stored,
        }


@dataclass(frozen=True)
class Window:
    """From the end of the oldest backup to the last archived WAL segment (None: no backup yet)."""

    start: datetime | None
    end: datetime | None

    def text(self) -> str:
        if self.start is None or self.end is None:
            return "no restorable window yet: take a physical backup (`mindscape backup create --physical`)"
        return f"restorable from {self.start:%Y-%m-%d %H:%M:%S}+00 to {self.end:%Y-%m-%d %H:%M:%S}+00"


def parse_info(text: str) -> list[PhysicalBackup]:
    """Pure: the backups in `pgbackrest info --output=json`, oldest first."""
    try:
        stanzas = json.loads(text, strict=False)  # a message may quote what a wrong key decrypted
    except json.JSONDecodeError:
        known = explain(text)
        said = next((line.strip() for line in text.splitlines() if "ERROR" in line or "WARN" in line), "")
        if known is not None:
            raise OperationFailed(f"{known[0]} ({said})", known[1]) from None
        raise OperationFailed(f"pgbackrest info did not answer JSON{': ' + said if said else ''}") from None
    found = []
    for stanza in stanzas:
        status = stanza.get("status", {})
        if status.get("code", 0) not in _USABLE:
            repos = [str(r.get("status", {}).get("message", "")) for r in stanza.get("repo", [])]
            known = explain("\n".join([str(status.get("message", "")), *repos]))
            if known is not None:
                first = next((m.splitlines()[0] for m in repos if m), str(status.get("message")))
                raise OperationFailed(f"{known[0]} ({first})", known[1])
            raise OperationFailed(
                f"the pgBackRest repository of stanza {stanza.get('name', '?')} cannot be used: "
                f"{status.get('message', 'unknown status')} (status {status.get('code')})",
                "check the repository (backups.pitr: its folder or bucket, its key) and `mindscape up`",
            )
        for item in stanza.get("backup", []):
            stamp, archive, info = item.get("timestamp", {}), item.get("archive", {}), item.get("info", {})
            found.append(
                PhysicalBackup(
                    label=item["label"],
                    kind=item.get("type", "?"),
                    started=datetime.fromtimestamp(stamp.get("start", 0), UTC),
                    stopped=datetime.fromtimestamp(stamp.get("stop", 0), UTC),
                    size=int(info.get("size", 0)),
                    stored=int(info.get("repository", {}).get("delta", 0)),
                    wal_start=archive.get("start") or "",
                    wal_stop=archive.get("stop") or "",
                )
            )
    return sorted(found, key=lambda b: b.stopped)


def window_of(backups: list[PhysicalBackup], last_archived: datetime | None) -> Window:
    """Pure: the span a `restore --to` can reach."""
    if not backups:
        return Window(None, None)
    newest = backups[-1].stopped
    return Window(backups[0].stopped, max(last_archived, newest) if last_archived else newest)


def gauges(backups: list[PhysicalBackup], since: datetime | None) -> dict[str, tuple[str, float]]:
    """Pure: what the alerts on the repository read (name -> (help, value)): how many backups it
    holds, when the window starts (0 with none), the newest full backup's end, and since when
    archiving has been on (`up` created the stanza)."""
    found = {
        BACKUPS_METRIC: ("Physical backups in the pgBackRest repository (backup create --physical).", len(backups)),
        WINDOW_START_METRIC: (
            "When the restorable window starts: the end of the oldest physical backup (0: none).",
            backups[0].stopped.timestamp() if backups else 0.0,
        ),
    }
    fulls = [b for b in backups if b.kind == "full"]
    if fulls:
        found[FULL_BACKUP_METRIC] = ("When the newest full physical backup ended.", fulls[-1].stopped.timestamp())
    if since is not None:
        found[SINCE_METRIC] = ("When WAL archiving began for this platform (its stanza created).", since.timestamp())
    return found


def promised_span(pitr: Pitr) -> float:
    """Pure: seconds back from now that keep_full full backups on full_schedule always reach, at
    the least: keep_full - 1 of the schedule's shortest gaps (exact for a schedule whose runs
    are evenly spaced, and never more than it promises for another)."""
    from mindscape_ops.settings.schedule import shortest_gap

    return (pitr.keep_full - 1) * (shortest_gap(pitr.full_schedule) or 0.0)


def promised_start(pitr: Pitr, now: datetime) -> datetime | None:
    """Pure: how far back backups.pitr promises a restore can go: the full schedule's run
    `keep_full - 1` runs before its latest (pgBackRest expires a full backup, and the WAL
    before the next one, once keep_full newer ones exist)."""
    at = last_run(pitr.full_schedule, now - GRACE)
    for _ in range(pitr.keep_full - 1):
        if at is None:
            return None
        at = last_run(pitr.full_schedule, at - timedelta(minutes=1))
    return at


def window_verdict(
    backups: list[PhysicalBackup], window: Window, pitr: Pitr, since: datetime | None, now: datetime
) -> str:
    """Pure: what passed, or Failed: no backup at all; no full backup since the full schedule
    last fired (or no backup since the differential one did), an hour of grace allowed; the
    window starting later than the retention promises. Nothing is due from before `since`
    (when archiving was turned on: a young platform has no older backups to keep)."""
    if not backups or window.start is None:
        raise Failed("no physical backup in the repository: nothing to restore from")
    since = since or backups[0].started
    fulls = [b for b in backups if b.kind == "full"]
    problems = []
    due = last_run(pitr.full_schedule, now - GRACE)
    if due is not None and due >= since and (not fulls or fulls[-1].stopped < due):
        newest = f"the newest, {fulls[-1].label}, is {_age(now - fulls[-1].stopped)} old" if fulls else "none yet"
        problems.append(f"no full backup since {pitr.full_schedule!r} fired at {due:%Y-%m-%d %H:%M}Z ({newest})")
    due = last_run(pitr.diff_schedule, now - GRACE) if pitr.diff_schedule else None
    if due is not None and due >= since and backups[-1].stopped < due:
        problems.append(
            f"no backup since {pitr.diff_schedule!r} fired at {due:%Y-%m-%d %H:%M}Z "
            f"(the newest, {backups[-1].label}, is {_age(now - backups[-1].stopped)} old)"
        )
    promised = promised_start(pitr, now)
    if promised is not None and promised >= since and window.start > promised + timedelta(seconds=BACKUP_GRACE_S):
        problems.append(
            f"the window starts at {window.start:%Y-%m-%d %H:%M}Z, later than the {promised:%Y-%m-%d %H:%M}Z "
            f"that keep_full: {pitr.keep_full} on {pitr.full_schedule!r} promises: a full backup is missing"
        )
    if problems:
        raise Failed("; ".join(problems))
    return f"{window.text()}; {len(fulls)} full backup(s), {pitr.keep_full} kept"


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return (
        f"{hours // 24}d{hours % 24:02d}h" if hours >= 24 else f"{hours}h{int(delta.total_seconds() // 60) % 60:02d}m"
    )


@dataclass(frozen=True)
class Segment:
    """An archived WAL segment in the repository: its name (timeline, log, segment) and when
    it was stored."""

    name: str
    stored: datetime

    @property
    def position(self) -> int:
        return position(self.name)

    @property
    def timeline(self) -> int:
        return int(self.name[:8], 16)


_SEGMENT = re.compile(r"(?:^|/)([0-9A-F]{24})-[0-9a-f]{40}(?:\.[a-z0-9]+)?$")


def parse_archive(text: str) -> list[Segment]:
    """Pure: the WAL segments in `pgbackrest repo-ls --recurse --output=json archive/STANZA`
    (a timeline's history, a backup's label and a partial segment are not segments)."""
    try:
        listing = json.loads(text)
    except json.JSONDecodeError:
        raise OperationFailed("pgbackrest repo-ls did not answer JSON") from None
    found = []
    for path, item in listing.items():
        match = _SEGMENT.search(path)
        if match and item.get("type") == "file":
            found.append(Segment(match.group(1), datetime.fromtimestamp(item.get("time", 0), UTC)))
    return sorted(found, key=lambda s: (s.position, s.name))


SEGMENT_BYTES = 0x1000000  # 16 MB WAL segments


def position(name: str) -> int:
    """Pure: a WAL segment's place in the WAL, whatever its timeline (16 MB segments: 256 per log file)."""
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def segment_name(timeline: int, at: int) -> str:
    """Pure: the WAL segment at position `at` on `timeline` (see `position`)."""
    return f"{timeline:08X}{at // 0x100:08X}{at % 0x100:08X}"


def timelines_along(timeline: int, history: dict[int, int]) -> list[tuple[int, int]]:
    """Pure: the timelines a recovery along `timeline` reads, oldest first, each with the first
    segment position it is read for: a timeline from the segment where its parent was left
    (the switch point's segment is copied onto the new timeline at the switch: the parent's copy
    of it is archived as `.partial`, or holds WAL the new timeline does not have), up to the
    segment where it was itself left. `history` is `timeline`'s history file (parse_history)."""
    found, at = [], 0
    for parent, left in sorted(history.items()):
        if parent < timeline:
            found.append((parent, at))
            at = left // SEGMENT_BYTES  # the segment of the switch point: read on the child
    return [*found, (timeline, at)]


def timeline_at(along: list[tuple[int, int]], at: int) -> int:
    """Pure: the timeline whose copy of the segment at position `at` a recovery reads (the newest
    that had begun by then, as Postgres reads them)."""
    return [timeline for timeline, begins in along if begins <= at][-1]


def missing_segments(
    segments: list[Segment],
    start: str,
    target: datetime | None,
    stop: str | None = None,
    timeline: int | None = None,
    history: dict[int, int] | None = None,
) -> list[str]:
    """Pure: the WAL segments a restore from a backup whose WAL starts at `start` replays along
    `timeline` (whose history file is `history`; default: the backup's own timeline) and the
    repository lacks, each named on the timeline it is read from. Segments of other timelines
    are not counted: an old timeline's after the switch, an abandoned restore's, the `.partial`
    copy of a switch point's segment. Needed: up to `stop` (a restore to the backup's end), else
    up to the newest archived along the way (`latest`, target None), else up to the first one
    along the way stored after the target time (the one that holds it, at the latest)."""
    along = timelines_along(timeline if timeline is not None else int(start[:8], 16), history or {})
    first = position(start)
    have = {s.position: s for s in segments if s.position >= first and s.timeline == timeline_at(along, s.position)}
    if stop is not None:
        last = position(stop)
    elif not have:
        return [segment_name(timeline_at(along, first), first)]
    elif target is None:
        last = max(have)
    else:
        after = [at for at, s in have.items() if s.stored > target]
        last = min(after) if after else max(have)
    return [segment_name(timeline_at(along, at), at) for at in range(first, last + 1) if at not in have]


def history_files(text: str) -> dict[int, str]:
    """Pure: the timelines' history files in the same `repo-ls` listing as parse_archive's, as
    {timeline: its path in the listing}."""
    try:
        listing = json.loads(text)
    except json.JSONDecodeError:
        raise OperationFailed("pgbackrest repo-ls did not answer JSON") from None
    found = {}
    for path, item in listing.items():
        match = _HISTORY.search(path)
        if match and item.get("type") == "file":
            found[int(match.group(1), 16)] = path
    return found


_HISTORY = re.compile(r"(?:^|/)([0-9A-F]{8})\.history$")


def parse_history(text: str) -> dict[int, int]:
    """Pure: a timeline's history file (`parent<TAB>LSN<TAB>reason` lines) as {parent timeline:
    the LSN where it was left}."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and re.fullmatch(r"[0-9A-Fa-f]+/[0-9A-Fa-f]+", parts[1]):
            high, low = parts[1].split("/")
            found[int(parts[0])] = (int(high, 16) << 32) | int(low, 16)
    return found


def in_history(backup: PhysicalBackup, timeline: int, history: dict[int, int]) -> bool:
    """Pure: whether a backup is in the past of `timeline`: taken on it, or on one of its
    ancestors before that was left (to the segment: a backup that ended in the segment where
    its timeline was left is taken as before it). A restore that was abandoned (killed before
    its swap, undone) leaves a timeline of its own in the repository; the live database's
    history never holds it."""
    taken_on = int(backup.wal_start[:8], 16)
    if taken_on == timeline:
        return True
    left = history.get(taken_on)
    return left is not None and position(backup.wal_stop) <= left // SEGMENT_BYTES


_BAD_FILE = re.compile(r"INFO: (invalid checksum|invalid size|missing|invalid) '([^']+)'")
_BAD_SET = re.compile(r"^\s*(backup: \S+|archiveId: \S+), status: invalid", re.M)


def verify_damage(text: str) -> list[str]:
    """Pure: what `pgbackrest verify` (2.45) found wrong; it exits 0 even then, saying
    `status: error` and each bad file on its own line."""
    if not re.search(r"^\s*status: error\s*$", text, re.M):
        return []
    files = [f"{path} ({what})" for what, path in _BAD_FILE.findall(text)]
    sets = [found.rstrip(",") for found in _BAD_SET.findall(text)]
    return [*(f"{s} is invalid" for s in sets), *files] or ["status: error"]
