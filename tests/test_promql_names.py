"""The PromQL reader the live metric tests use: it finds the metric names, and only them."""

from __future__ import annotations

import pytest

from .promql_support import metric_names, missing_names, substitute_grafana


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="node_exporter"} == 0', {"up"}),
        ("vector(1)", set()),
        ("increase(prometheus_rule_evaluation_failures_total[5m]) > 0", {"prometheus_rule_evaluation_failures_total"}),
        (
            "sum by (integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
            {"alertmanager_notifications_failed_total"},
        ),
        (
            'node_filesystem_avail_bytes{fstype!~"tmpfs|a{b}"} / (node_filesystem_size_bytes{fstype!~"x"} > 0) < 0.1',
            {"node_filesystem_avail_bytes", "node_filesystem_size_bytes"},
        ),
        (
            "time() - mindscape_backup_last_success_timestamp_seconds > 266400",
            {"mindscape_backup_last_success_timestamp_seconds"},
        ),
        (
            'absent(m{service="postgres"}) and on() (up{job="node_exporter"} == 1)',
            {"m", "up"},
        ),
        (
            "histogram_quantile(0.95, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5",
            {"http_request_duration_seconds_bucket"},
        ),
        ("a / on (instance) group_left (version) b offset 5m", {"a", "b"}),
        ('{__name__="pg_up", job="x"} == 0', {"pg_up"}),
        ("rate(x_total[1h:5m] @ end())", {"x_total"}),
        ("1e3 * pg_stat_database_deadlocks and bool 0x1f", {"pg_stat_database_deadlocks"}),
        (
            "max without (instance) (redis_memory_used_bytes / redis_memory_max_bytes)",
            {"redis_memory_used_bytes", "redis_memory_max_bytes"},
        ),
        ("namespace:rule:rate5m > 1", {"namespace:rule:rate5m"}),
    ],
)
def test_metric_names(expr: str, names: set[str]):
    assert metric_names(expr) == names


def test_grafana_variables_are_substituted():
    query = 'sum(rate(pg_x_total{job=~"$job", instance=~"${instance}"}[$__rate_interval]))'
    assert substitute_grafana(query) == 'sum(rate(pg_x_total{job=~".*", instance=~".*"}[5m]))'
    assert metric_names(query) == {"pg_x_total"}


def test_either_side_of_or_is_enough():
    expr = "max by (db) (a_total or b_total) > 1 and on() c"
    assert missing_names(expr, {"a_total", "c"}) == set()
    assert missing_names(expr, {"b_total", "c"}) == set()
    assert missing_names(expr, {"c"}) == {"a_total"} or missing_names(expr, {"c"}) == {"b_total"}
    assert missing_names(expr, {"a_total"}) == {"c"}
    assert missing_names("(x or y) / z", {"y"}) == {"z"}
