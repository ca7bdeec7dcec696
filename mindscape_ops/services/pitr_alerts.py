"""The alerts of point-in-time recovery (backups.pitr), rendered into prometheus/rules/services.yml
and runbooks/alerts.md: WAL archiving failing or late (postgres_exporter's pg_archiver query), no
full backup in time, the restorable window short or gone (the gauges `backup create --physical`
records of the repository, named here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup
from mindscape_ops.services.pitr import SERVICE, settings

if TYPE_CHECKING:
    from mindscape_ops.config.backups import Pitr
    from mindscape_ops.config.models import Platform

# What `backup create --physical` records of the repository (backup/metrics.py writes them to
# .mindscape/metrics: node_exporter's textfile collector reads them, else Prometheus loads them
# as recording rules), pitr_info.gauges makes them.
FULL_BACKUP_METRIC = "mindscape_pitr_last_full_backup_timestamp_seconds"
WINDOW_START_METRIC = "mindscape_pitr_window_start_timestamp_seconds"
BACKUPS_METRIC = "mindscape_pitr_backups"
SINCE_METRIC = "mindscape_pitr_archiving_since_timestamp_seconds"


def alerts(platform: Platform) -> AlertGroup:
    """Archiving failing or late (postgres_exporter's pg_archiver query, queries.yaml); no full
    backup within the full schedule's longest gap, the restorable window short or gone (what
    `backup create --physical` records: node_exporter's textfile, else Prometheus' recording
    rules): each only where its metrics reach Prometheus."""
    from mindscape_ops.services.prometheus import reads_backup_times

    pitr = settings(platform)
    enabled = platform.services.enabled()
    found: list[Alert] = []
    logs = f"`mindscape logs {SERVICE} --tail 200` shows pgBackRest's archive-push errors"
    if pitr is not None and "postgres_exporter" in enabled:
        bound = int(2 * pitr.archive_timeout.seconds + 60)
        found += [
            Alert(
                "PostgresArchivingFailing",
                "pg_archiver_failing == 1",
                "5m",
                "critical",
                SERVICE,
                "WAL archiving fails",
                "pgBackRest's archive-push has failed since the last success: nothing written since then can be "
                "restored to a point in time, and Postgres keeps the WAL on its disk until archiving works again.",
                (
                    f"{logs} (the repository unreachable or full, a wrong key).",
                    "`mindscape check --only backups` says since when; fix the cause: archiving resumes by itself "
                    "from the first segment it could not send.",
                ),
            ),
            Alert(
                "PostgresArchiveLag",
                f"pg_archiver_waiting_segments > 0 and pg_archiver_last_archived_age_seconds > {bound}",
                "5m",
                "warning",
                SERVICE,
                "{{ $value }} s since a WAL segment was archived, with segments waiting",
                f"Completed WAL segments wait while the last was archived more than {bound} s ago (twice "
                "backups.pitr.archive_timeout plus a minute): the point a restore can reach falls behind.",
                (
                    f"{logs}; a slow repository shows as long archive-push runs.",
                    "Waiting segments: `SELECT * FROM pg_stat_archiver;` in the database.",
                ),
            ),
        ]
    # the repository's gauges: node_exporter's textfile, else recording rules Prometheus loads
    if pitr is not None and ("node_exporter" in enabled or ("prometheus" in enabled and reads_backup_times(platform))):
        found += _repository_alerts(platform, pitr)
    return AlertGroup("postgres_pitr", tuple(found), rank=11)


def _repository_alerts(platform: Platform, pitr: Pitr) -> list[Alert]:
    """No full backup within the full schedule's longest gap; the restorable window shorter
    than keep_full promises, or gone (once archiving has been on longer than that)."""
    from mindscape_ops.services.pitr_info import promised_span
    from mindscape_ops.settings.schedule import BACKUP_GRACE_S, longest_gap

    limit = int((longest_gap(pitr.full_schedule) or 7 * 86400) + BACKUP_GRACE_S)
    span = int(promised_span(pitr))
    check = "`mindscape check --only backups` (backups.restorable_window) and `mindscape backup list` show the window."
    return [
        Alert(
            "PostgresFullBackupMissing",
            f"time() - {FULL_BACKUP_METRIC} > {limit}",
            "10m",
            "warning",
            SERVICE,
            "The newest full physical backup is {{ $value | humanizeDuration }} old",
            f"No full backup within backups.pitr.full_schedule's longest gap ({pitr.full_schedule!r}) plus "
            "two hours: the restorable window stops moving forward and restores replay ever more WAL. "
            "`mindscape backup create --physical` records its time in .mindscape/metrics.",
            (
                "Take one: `mindscape backup create --physical` (it says why when it cannot).",
                "Scheduled ones run in the backup workflow's `physical` job: its last run says why it did not.",
                check,
            ),
        ),
        Alert(
            "PostgresRestorableWindowShort",
            f"(time() - {WINDOW_START_METRIC} < {span} or {BACKUPS_METRIC} == 0) "
            f"and on() (time() - {SINCE_METRIC} > {span + BACKUP_GRACE_S})",
            "10m",
            "warning",
            SERVICE,
            "The restorable window is shorter than backups.pitr.keep_full promises",
            f"The repository's oldest backup ended less than {_days(span)} ago ({pitr.keep_full} full backup(s) on "
            f"{pitr.full_schedule!r} promise at least that), or it holds no backup at all: a restore cannot go "
            "back as far as promised. pgBackRest expires a full backup once keep_full newer ones exist, so "
            "extra full backups (taken by hand) shorten the window; a repository emptied or replaced loses it.",
            (
                "`mindscape backup list` shows the backups and `restorable from ... to ...`.",
                "Extra full backups: take differential ones by hand (`--type diff`), or raise "
                "backups.pitr.keep_full; the window grows back as the schedule runs.",
                "No backup at all: the repository (backups.pitr: its folder or bucket) was emptied or replaced; "
                "take a full backup now (`mindscape backup create --physical`) and find out what removed it.",
            ),
        ),
    ]


def _days(seconds: int) -> str:
    """Pure: `7d`, `36h` or `90s`, the largest whole unit."""
    return (
        f"{seconds // 86400}d"
        if seconds % 86400 == 0 and seconds
        else (f"{seconds // 3600}h" if seconds % 3600 == 0 and seconds else f"{seconds}s")
    )
