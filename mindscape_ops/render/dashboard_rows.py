"""The dashboard's row of the applications (monitoring.targets); each service's row is its
module's (`ServiceDef.dashboard`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mindscape_ops.render.dashboard import RATE, Layout, query, timeseries

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


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
