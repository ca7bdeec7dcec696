"""The identity service's alerts and its row of the platform dashboard, from the metrics Ory
Kratos serves on its admin port (/admin/metrics/prometheus): its HTTP requests counted by
endpoint, method and status code. A failed login is a submission of the login flow that Kratos
refuses: 400 (wrong password or code, unknown user; the API and JSON flows) or 303 back to the
form (a browser flow); a successful one answers 200 (or 303 on to the application)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, Panel, number
from mindscape_ops.services.panels import RATE, SEL, query, stat, timeseries

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

JOB = "identity"  # its scrape job
REQUESTS = "http_requests_total"  # Kratos' requests, by endpoint, method and code
LOGIN = 'endpoint="/self-service/login", method="post"'  # a login flow's submissions (Kratos: lower case)
FAILED = f'{LOGIN}, code="400"'
OWN = f'job="{JOB}"'


def failed_logins_per_minute(selector: str, window: str) -> str:
    """Pure: PromQL for failed logins a minute over a window (0 with none counted yet)."""
    return f"(sum(rate({REQUESTS}{{{selector}}}[{window}])) or vector(0)) * 60"


def alerts(platform: Platform) -> AlertGroup:
    """The identity service down (the gateway fails closed: 503 on protected routes), and a spike
    of failed logins (password guessing, a broken client)."""
    limit = platform.monitoring.thresholds.login_failures_per_minute
    return AlertGroup(
        "identity",
        (
            Alert(
                "IdentityServiceDown",
                f'up{{job="{JOB}"}} == 0',
                "1m",
                "critical",
                JOB,
                "The identity service is down",
                "Prometheus has not reached the identity service (Ory Kratos) at {{ $labels.instance }} for 1 "
                "minute: the gateway answers 503 on every route that needs a session (public routes still "
                "answer), and nobody can log in.",
                (
                    "`mindscape status` shows whether identity runs; `mindscape up identity` starts it.",
                    "`mindscape logs identity --tail 100` says why it stopped: a database it cannot reach "
                    "(`mindscape logs postgres`), a migration that failed, a configuration it refused.",
                    "Once it answers, `mindscape check --only auth` proves the gateway lets sessions through again.",
                ),
            ),
            Alert(
                "LoginFailureSpike",
                f"{failed_logins_per_minute(OWN + ', ' + FAILED, '5m')} > {number(limit)}",
                "5m",
                "warning",
                JOB,
                "Logins are failing at the identity service",
                f"More than {number(limit)} logins a minute failed at the identity service over 5 minutes "
                "(monitoring.thresholds.login_failures_per_minute): passwords being guessed, or a client "
                "that sends wrong credentials.",
                (
                    "Who: `mindscape logs gateway --query 'event.line.event:=login AND "
                    "event.line.outcome:=failed' --since 15m` lists each failed login through the gateway "
                    "with its identifier (the e-mail tried) and the client's address.",
                    "Many identifiers from one address: guessing. security.auth.login_rate_limit slows one "
                    "address down (429); block it in front of the gateway if it goes on.",
                    "One identifier from many addresses: that account is targeted; `mindscape auth disable "
                    "EMAIL` stops its logins and ends its sessions, `mindscape auth reset-mfa` if a factor "
                    "may be known.",
                ),
            ),
        ),
        rank=45,  # after the gateway's
    )


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    """Its row: up, logins a minute (succeeded, failed) and its answers by status code. Its own
    job besides the dashboard's variables: `up` and `http_requests_total` are other jobs' too."""
    limit = platform.monitoring.thresholds.login_failures_per_minute
    mine = f"{OWN}, {SEL}"
    panels = (
        Panel(
            stat(
                "Identity service up",
                f"min(up{{{mine}}})",
                "up",
                "Whether Prometheus reaches the identity service; down, the gateway answers 503 on protected routes.",
                mappings=[{"type": "value", "options": {"0": {"text": "down"}, "1": {"text": "up"}}}],
                red_from=1,
                good_low=False,
            ),
            width=6,
        ),
        Panel(
            timeseries(
                "Logins a minute",
                "short",
                query(f'sum(rate({REQUESTS}{{{mine}, {LOGIN}, code="200"}}{RATE})) * 60', "succeeded"),
                query(f"sum(rate({REQUESTS}{{{mine}, {FAILED}}}{RATE})) * 60", "failed"),
                threshold=limit,
                description="Submissions of the login flow the identity service accepted (200) or refused (400).",
            ),
            width=12,
        ),
        Panel(
            timeseries(
                "Identity service answers",
                "reqps",
                query(f"sum by (code) (rate({REQUESTS}{{{mine}}}{RATE}))", "{{code}}"),
            ),
            width=6,
        ),
    )
    return (DashboardRow("Identity", panels, rank=65),)
