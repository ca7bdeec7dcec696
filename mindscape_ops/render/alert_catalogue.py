"""The built-in alert groups about each service, for `alerts.alert_groups`: each is rendered
only when its exporter is enabled. Expressions are ours; awesome-prometheus-alerts was the
list of what to cover."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.render.alerts import Alert, AlertGroup, number, percent

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

# Filesystems worth watching: not the in-memory or image-layer ones.
_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'


def postgres(t) -> AlertGroup:
    logs = "`mindscape logs postgres --tail 200`"
    return AlertGroup(
        "postgres",
        (
            Alert(
                "PostgresDown",
                "pg_up == 0",
                "1m",
                "critical",
                "postgres",
                "Postgres is down",
                "postgres_exporter at {{ $labels.instance }} cannot connect to Postgres.",
                (f"`mindscape status`; {logs} says why; `mindscape up postgres`.",),
            ),
            Alert(
                "PostgresTooManyConnections",
                f"sum(pg_stat_activity_count) / max(pg_settings_max_connections) > {t.postgres_connections_ratio}",
                "5m",
                "warning",
                "postgres",
                "Postgres uses {{ $value | humanizePercentage }} of max_connections",
                f"More than {percent(t.postgres_connections_ratio)} of max_connections are in use; new connections "
                "will soon be refused. Check for leaks, or pool through pgbouncer.",
                (
                    "Who holds them: `SELECT usename, application_name, state, count(*) FROM pg_stat_activity "
                    "GROUP BY 1, 2, 3 ORDER BY 4 DESC;`",
                    "Connect the application through services.pgbouncer, or raise max_connections in "
                    "services.postgres.settings.",
                ),
            ),
            Alert(
                "PostgresDeadlocks",
                "sum by (instance, datname) (increase(pg_stat_database_deadlocks[5m])) > " + str(t.postgres_deadlocks),
                "0s",
                "warning",
                "postgres",
                "{{ $value | humanize }} deadlocks in {{ $labels.datname }} over 5 minutes",
                "Transactions of database {{ $labels.datname }} wait on each other; Postgres aborts one of each pair.",
                (
                    f"{logs} shows each deadlock with the two statements involved.",
                    "Make the application take locks in one order (e.g. rows by primary key).",
                ),
            ),
            Alert(
                "PostgresLongTransaction",
                f'max by (instance, datname) (pg_stat_activity_max_tx_duration{{state!="idle"}}) > '
                f"{number(t.postgres_transaction_max.seconds)}",
                "1m",
                "warning",
                "postgres",
                "A transaction in {{ $labels.datname }} is open for {{ $value | humanizeDuration }}",
                f"A transaction has been open longer than {t.postgres_transaction_max}: it holds locks and keeps "
                "VACUUM from cleaning up.",
                (
                    "Find it: `SELECT pid, usename, state, now() - xact_start AS age, query FROM pg_stat_activity "
                    "WHERE xact_start IS NOT NULL ORDER BY age DESC LIMIT 5;`",
                    "End it if it is stuck: `SELECT pg_terminate_backend(PID);`",
                ),
            ),
            Alert(
                "PostgresRestarted",
                "changes(pg_postmaster_start_time_seconds[15m]) > 0",
                "0s",
                "warning",
                "postgres",
                "Postgres restarted",
                "Postgres started again within the last 15 minutes: connections were dropped. "
                "mindscape runs one Postgres without a replica, so there is no replication to watch.",
                (f"{logs} shows why it stopped (a crash, out of memory, or a `mindscape up` that recreated it).",),
            ),
        ),
    )


def redis(t) -> AlertGroup:
    return AlertGroup(
        "redis",
        (
            Alert(
                "RedisDown",
                "redis_up == 0",
                "1m",
                "critical",
                "redis",
                "Redis is down",
                "redis_exporter at {{ $labels.instance }} cannot connect to Redis.",
                ("`mindscape status`; `mindscape logs redis --tail 200`; `mindscape up redis`.",),
            ),
            Alert(
                "RedisMemoryNearMax",
                # `> 0` drops instances without maxmemory, so there is no division by zero.
                f"redis_memory_used_bytes / (redis_memory_max_bytes > 0) > {t.redis_memory_ratio}",
                "5m",
                "warning",
                "redis",
                "Redis uses {{ $value | humanizePercentage }} of maxmemory",
                f"Redis memory is above {percent(t.redis_memory_ratio)} of maxmemory; keys are being evicted or "
                "writes will fail, depending on maxmemory_policy.",
                ("Raise services.redis.maxmemory, or find the big keys: `redis-cli --bigkeys`.",),
            ),
            Alert(
                "RedisRejectedConnections",
                "increase(redis_rejected_connections_total[5m]) > 0",
                "0s",
                "critical",
                "redis",
                "Redis rejected {{ $value | humanize }} connections over 5 minutes",
                "Redis refused connections: it has reached maxclients.",
                ("Who is connected: `redis-cli CLIENT LIST`; close leaked clients or raise maxclients.",),
            ),
            Alert(
                "RedisEvictingKeys",
                "increase(redis_evicted_keys_total[5m]) > 0",
                "5m",
                "warning",
                "redis",
                "Redis evicted {{ $value | humanize }} keys over 5 minutes",
                "Redis is full and drops keys under maxmemory_policy; fine for a cache, data loss for anything else.",
                ("Raise services.redis.maxmemory, or set keys with a TTL.",),
            ),
        ),
    )


def pgbouncer(t) -> AlertGroup:
    # The official exporter and Debian's name the metric differently: either one is read.
    waiting = "pgbouncer_pools_client_waiting_connections or pgbouncer_waiting_clients"
    return AlertGroup(
        "pgbouncer",
        (
            Alert(
                "PgbouncerWaitingClients",
                f"max by (instance, database) ({waiting}) > {t.pgbouncer_waiting_clients}",
                "2m",
                "warning",
                "pgbouncer",
                "{{ $value }} clients wait for a server connection to {{ $labels.database }}",
                "Clients queue in pgbouncer: every server connection of the pool is busy.",
                (
                    "See the pools: `SHOW POOLS;` on the pgbouncer admin database.",
                    "Raise services.pgbouncer.default_pool_size (within Postgres' max_connections), "
                    "or find slow queries.",
                ),
            ),
        ),
    )


def gateway(t) -> AlertGroup:
    rate = 'rate(gateway_http_requests_total{status=~"5.."}[5m])'
    latency = number(t.http_latency_p95.seconds)
    return AlertGroup(
        "gateway",
        (
            Alert(
                "GatewayErrorRatioHigh",
                f"sum({rate}) / sum(rate(gateway_http_requests_total[5m])) > {t.http_error_ratio}",
                "5m",
                "critical",
                "gateway",
                "{{ $value | humanizePercentage }} of requests through the gateway answer 5xx",
                f"More than {percent(t.http_error_ratio)} of the gateway's answers over 5 minutes were 5xx "
                "(counted by gateway_exporter from its access log).",
                (
                    "502/504 come from the gateway when the application is down or slow: check it directly.",
                    "`mindscape logs gateway --tail 200` shows the failing requests (audit log).",
                ),
            ),
            Alert(
                "GatewayLatencyP95High",
                "histogram_quantile(0.95, sum by (le) (rate(gateway_http_request_duration_seconds_bucket[5m]))) > "
                + latency,
                "10m",
                "warning",
                "gateway",
                "p95 latency through the gateway is {{ $value | humanizeDuration }}",
                f"More than 5% of requests through the gateway took longer than {t.http_latency_p95} over 5 minutes.",
                ("The gateway adds little: the application or its database is slow (see PostgresLongTransaction).",),
            ),
        ),
    )


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


def logs() -> AlertGroup:
    """The log store (services.victorialogs): down, or up and storing nothing from the containers."""
    return AlertGroup(
        "logs",
        (
            Alert(
                "LogStoreDown",
                'up{job="victorialogs"} == 0',
                "1m",
                "critical",
                "victorialogs",
                "The log store is down",
                "Prometheus has not reached VictoriaLogs at {{ $labels.instance }} for 1 minute: container logs "
                "are buffered by the engine for a while, then dropped; `mindscape logs` falls back to the "
                "engine's logs.",
                (
                    "`mindscape status` shows whether victorialogs runs; `mindscape up victorialogs` starts it.",
                    "`mindscape logs victorialogs --tail 100` says why it stopped (a full disk: lower "
                    "services.victorialogs.retention or raise its disk limit).",
                ),
            ),
            Alert(
                "LogIngestionStopped",
                '(sum(increase(vl_rows_ingested_total{type="splunk"}[30m])) or vector(0)) == 0 '
                'and on() (up{job="victorialogs"} == 1)',
                "5m",
                "warning",
                "victorialogs",
                "No container log line reached the log store for 30 minutes",
                "VictoriaLogs is up but stored no line from the containers' log driver. A platform that is "
                "really that quiet also fires this; `mindscape check --only logs` names a container whose lines "
                "do not arrive.",
                (
                    "`mindscape check --only logs` looks for each container's newest line in the store and names "
                    "those missing (with nothing to compare, it writes a marker line and looks for it).",
                    "Containers made before the store was enabled still log to json-file: `mindscape up` "
                    "recreates them with the shipping log driver.",
                ),
            ),
        ),
    )
