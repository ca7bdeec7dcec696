"""The dashboard's rows, one per service with metrics, in the order they appear; each is drawn
only when the exporter it reads is enabled (SECTIONS: (service needed, row))."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mindscape_ops.render.dashboard import RATE, SEL, Layout, query, stat, timeseries

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


def prometheus(layout: Layout, platform: Platform) -> None:
    layout.row("Prometheus")
    layout.add(
        timeseries(
            "Samples ingested",
            "short",
            query(f"rate(prometheus_tsdb_head_samples_appended_total{{{SEL}}}{RATE})", "{{instance}}"),
        )
    )
    layout.add(
        timeseries(
            "Rule evaluation failures",
            "short",
            query(
                f"sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total{{{SEL}}}{RATE}))",
                "{{rule_group}}",
            ),
        )
    )
    layout.add(
        stat(
            "Config loaded",
            f"prometheus_config_last_reload_successful{{{SEL}}}",
            "{{instance}}",
            "Whether the last reload of prometheus.yml and its rules worked.",
            [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "FAILED", "color": "red", "index": 0},
                        "1": {"text": "OK", "color": "green", "index": 1},
                    },
                }
            ],
            good_low=False,
        )
    )


def alertmanager(layout: Layout, platform: Platform) -> None:
    layout.row("Alertmanager")
    layout.add(
        timeseries(
            "Notifications sent",
            "short",
            query(f"sum by (integration) (rate(alertmanager_notifications_total{{{SEL}}}{RATE}))", "{{integration}}"),
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "Notifications failed",
            "short",
            query(
                f"sum by (integration) (rate(alertmanager_notifications_failed_total{{{SEL}}}{RATE}))",
                "{{integration}}",
            ),
            threshold=0.0001,
        ),
        width=12,
    )


def postgres(layout: Layout, platform: Platform) -> None:
    t = platform.monitoring.thresholds
    layout.row("Postgres")
    layout.add(
        timeseries(
            "Postgres connections",
            "none",
            query(f"sum by (state) (pg_stat_activity_count{{{SEL}}})", "{{state}}"),
            query(f"max(pg_settings_max_connections{{{SEL}}})", "max_connections"),
        )
    )
    layout.add(
        timeseries(
            "Transactions",
            "short",
            query(f"sum by (datname) (rate(pg_stat_database_xact_commit{{{SEL}}}{RATE}))", "commit {{datname}}"),
            query(f"sum by (datname) (rate(pg_stat_database_xact_rollback{{{SEL}}}{RATE}))", "rollback {{datname}}"),
        )
    )
    layout.add(
        timeseries(
            "Deadlocks",
            "short",
            query(f"sum by (datname) (increase(pg_stat_database_deadlocks{{{SEL}}}{RATE}))", "{{datname}}"),
            threshold=t.postgres_deadlocks + 0.5,
        )
    )
    layout.add(
        timeseries(
            "Longest open transaction",
            "s",
            query(f'max by (datname) (pg_stat_activity_max_tx_duration{{{SEL}, state!="idle"}})', "{{datname}}"),
            threshold=t.postgres_transaction_max.seconds,
        )
    )
    layout.add(timeseries("Database size", "bytes", query(f"pg_database_size_bytes{{{SEL}}}", "{{datname}}")))
    layout.add(
        timeseries(
            "Uptime",
            "s",
            query(f"time() - pg_postmaster_start_time_seconds{{{SEL}}}", "{{instance}}"),
            description="Drops to 0 when Postgres restarts (PostgresRestarted).",
        )
    )


def pgbouncer(layout: Layout, platform: Platform) -> None:
    layout.row("pgbouncer")
    # The official exporter and Debian's (the local image) name the series differently.
    waiting = f"pgbouncer_pools_client_waiting_connections{{{SEL}}} or pgbouncer_waiting_clients{{{SEL}}}"
    active = f"pgbouncer_pools_client_active_connections{{{SEL}}} or pgbouncer_active_clients{{{SEL}}}"
    layout.add(
        timeseries(
            "Clients waiting",
            "none",
            query(f"sum by (database) ({waiting})", "{{database}}"),
            threshold=platform.monitoring.thresholds.pgbouncer_waiting_clients + 0.5,
        ),
        width=12,
    )
    layout.add(timeseries("Clients active", "none", query(f"sum by (database) ({active})", "{{database}}")), width=12)


def redis(layout: Layout, platform: Platform) -> None:
    layout.row("Redis")
    layout.add(
        timeseries(
            "Redis memory",
            "bytes",
            query(f"redis_memory_used_bytes{{{SEL}}}", "used {{instance}}"),
            query(f"redis_memory_max_bytes{{{SEL}}} > 0", "maxmemory {{instance}}"),
        )
    )
    layout.add(
        timeseries("Commands", "ops", query(f"rate(redis_commands_processed_total{{{SEL}}}{RATE})", "{{instance}}"))
    )
    layout.add(
        timeseries(
            "Clients",
            "none",
            query(f"redis_connected_clients{{{SEL}}}", "connected {{instance}}"),
            query(f"rate(redis_rejected_connections_total{{{SEL}}}{RATE})", "rejected/s {{instance}}"),
        )
    )
    layout.add(
        timeseries(
            "Evictions and expiries",
            "short",
            query(f"rate(redis_evicted_keys_total{{{SEL}}}{RATE})", "evicted {{instance}}"),
            query(f"rate(redis_expired_keys_total{{{SEL}}}{RATE})", "expired {{instance}}"),
        ),
        width=12,
    )
    layout.add(timeseries("Keys", "none", query(f"sum by (db) (redis_db_keys{{{SEL}}})", "{{db}}")), width=12)


def gateway(layout: Layout, platform: Platform) -> None:
    t = platform.monitoring.thresholds
    total = f"sum(rate(gateway_http_requests_total{{{SEL}}}{RATE}))"
    layout.row("Gateway")
    layout.add(
        timeseries(
            "Requests by status",
            "reqps",
            query(f"sum by (status) (rate(gateway_http_requests_total{{{SEL}}}{RATE}))", "{{status}}"),
        )
    )
    layout.add(
        timeseries(
            "Gateway 5xx ratio",
            "percentunit",
            query(f'sum(rate(gateway_http_requests_total{{{SEL}, status=~"5.."}}{RATE})) / {total}', "5xx"),
            threshold=t.http_error_ratio,
        )
    )
    layout.add(
        timeseries(
            "Gateway latency",
            "s",
            query(
                "histogram_quantile(0.5, sum by (le) "
                f"(rate(gateway_http_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
                "p50",
            ),
            query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(gateway_http_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
                "p95",
            ),
            threshold=round(t.http_latency_p95.seconds, 6),
        )
    )


def node(layout: Layout, platform: Platform) -> None:
    t = platform.monitoring.thresholds
    fs = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'
    layout.row("Host")
    layout.add(
        timeseries(
            "CPU busy",
            "percentunit",
            query(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{SEL}, mode="idle"}}{RATE}))', "{{instance}}"),
        )
    )
    layout.add(
        timeseries(
            "Memory available",
            "percentunit",
            query(f"node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}}", "{{instance}}"),
            threshold=t.memory_available_ratio,
        )
    )
    layout.add(
        timeseries(
            "Disk free",
            "percentunit",
            query(
                f"node_filesystem_avail_bytes{{{SEL}, {fs}}} / node_filesystem_size_bytes{{{SEL}, {fs}}}",
                "{{mountpoint}}",
            ),
            threshold=t.disk_free_ratio,
        )
    )


def backups(layout: Layout, platform: Platform) -> None:
    if not (platform.backups.enabled and platform.backup_services):
        return
    layout.row("Backups")
    layout.add(
        timeseries(
            "Age of the last good backup",
            "s",
            query(f"time() - mindscape_backup_last_success_timestamp_seconds{{{SEL}}}", "{{service}}"),
            threshold=platform.monitoring.thresholds.backup_max_age.seconds,
            description="From `mindscape backup create` on this machine (BackupTooOld).",
        ),
        width=24,
    )


def applications(layout: Layout, platform: Platform) -> None:
    """The application targets (monitoring.targets), by their own metric names."""
    t = platform.monitoring.thresholds
    names = "|".join(re.escape(target.name) for target in platform.scrape_targets)
    jobs = 'job=~"' + names.replace("\\", "\\\\") + '"'
    layout.row("Applications")
    layout.add(
        timeseries(
            "Request rate", "reqps", query(f"sum by (job) (rate(http_requests_total{{{jobs}}}{RATE}))", "{{job}}")
        )
    )
    layout.add(
        timeseries(
            "5xx ratio",
            "percentunit",
            query(
                f'sum by (job) (rate(http_requests_total{{{jobs},status=~"5.."}}{RATE})) '
                f"/ sum by (job) (rate(http_requests_total{{{jobs}}}{RATE}))",
                "{{job}}",
            ),
            threshold=t.http_error_ratio,
        )
    )
    layout.add(
        timeseries(
            "p95 latency",
            "s",
            query(
                "histogram_quantile(0.95, sum by (le, job) "
                f"(rate(http_request_duration_seconds_bucket{{{jobs}}}{RATE})))",
                "{{job}}",
            ),
            threshold=round(t.http_latency_p95.seconds, 6),
        )
    )


SECTIONS = (
    (None, prometheus),
    ("alertmanager", alertmanager),
    ("postgres_exporter", postgres),
    ("pgbouncer_exporter", pgbouncer),
    ("redis_exporter", redis),
    ("gateway_exporter", gateway),
    ("node_exporter", node),
    ("node_exporter", backups),
)
