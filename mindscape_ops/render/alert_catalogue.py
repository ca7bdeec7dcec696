"""The platform's built-in alert groups that are no one service's, for `alerts.alert_groups`:
the host (rendered always: node_exporter or another host exporter feeds them) and backups.
Expressions are ours; awesome-prometheus-alerts was the list of what to cover."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.render.alerts import Alert, AlertGroup, number, percent

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

# Filesystems worth watching: not the in-memory or image-layer ones.
_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'


def node(t) -> AlertGroup:
    free = f"node_filesystem_avail_bytes{{{_FS}}} / (node_filesystem_size_bytes{{{_FS}}} > 0)"
    return AlertGroup(
        "node",
        (
            Alert(
                "DiskSpaceLow",
                f"{free} < {t.disk_free_ratio}",
                "10m",
                "critical",
                "{{ $labels.job }}",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free",
                f"Free space is below {percent(t.disk_free_ratio)} (needs node_exporter metrics). Free space or grow "
                "the volume before writes fail.",
                (
                    "What is big: `docker system df -v`; old backups: `mindscape backup prune`.",
                    "Grow the volume, or lower services.prometheus.retention.",
                ),
            ),
            Alert(
                "DiskFillingUp",
                f"predict_linear(node_filesystem_avail_bytes{{{_FS}}}[6h], 24 * 3600) < 0 and {free} < 0.4",
                "1h",
                "warning",
                "{{ $labels.job }}",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} will be full within 24 hours",
                "At the rate of the last 6 hours this filesystem runs out of space within a day "
                "(needs node_exporter metrics).",
                ("As DiskSpaceLow, before it fires.",),
            ),
            Alert(
                "MemoryLow",
                f"node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < {t.memory_available_ratio}",
                "5m",
                "warning",
                "{{ $labels.job }}",
                "{{ $labels.instance }} has {{ $value | humanizePercentage }} memory available",
                f"Less than {percent(t.memory_available_ratio)} of memory is available: the kernel will soon kill "
                "processes (needs node_exporter metrics).",
                ("Who uses it: `docker stats --no-stream`; lower Postgres' shared_buffers or Redis' maxmemory.",),
            ),
        ),
    )


BACKUP_METRIC = "mindscape_backup_last_success_timestamp_seconds"


def backups(platform: Platform) -> AlertGroup:
    age = platform.monitoring.thresholds.backup_max_age
    return AlertGroup(
        "backups",
        (
            Alert(
                "BackupTooOld",
                f"time() - {BACKUP_METRIC} > {number(age.seconds)}",
                "10m",
                "critical",
                "{{ $labels.service }}",
                "The last good backup of {{ $labels.service }} is {{ $value | humanizeDuration }} old",
                f"No backup of this service has succeeded for longer than {age}. `mindscape backup create` writes "
                "the time of each success where node_exporter reads it (.mindscape/metrics).",
                (
                    "`mindscape backup list` shows the last ones; `mindscape backup create --service SERVICE` makes "
                    "one now and says why it fails.",
                    "Check the schedule (backups.schedule) and the backup workflow's last runs.",
                ),
            ),
            Alert(
                "BackupNeverRecorded",
                "("
                + " or ".join(f'absent({BACKUP_METRIC}{{service="{name}"}})' for name in platform.backup_services)
                + ') and on() (up{job="node_exporter"} == 1)',
                str(age),
                "critical",
                "{{ $labels.service }}",
                "No good backup of {{ $labels.service }} is recorded",
                f"node_exporter has run for {age} and no backup of this service has succeeded on this machine "
                "(BackupTooOld only sees a service that had one).",
                (
                    "`mindscape backup create --service SERVICE` makes one now and says why it fails.",
                    "Backups made elsewhere (a CI runner) are not recorded here: run them where the platform runs.",
                ),
            ),
        ),
    )
