"""`monitoring:` in platform.yaml: application targets, alert thresholds, the user's own rules,
and where alerts go (receivers, the SMTP relay, the Watchdog). Secrets (webhook URLs, routing
keys, SMTP passwords) never live here: a setting names the variable or the file holding one,
and `up` hands its value to Alertmanager as a file."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from mindscape_ops.settings.base import HttpUrl, ScrapeTarget, Strict
from mindscape_ops.settings.types import Duration, EnvName, Name, Text, matching

AlertName = Annotated[str, matching(re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"), "an alert name (letters, digits, _)")]
Email = Annotated[str, matching(re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"), "an e-mail address")]
Hostname = Annotated[
    str, matching(re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"), "a host name like smtp.example.com")
]
SlackChannel = Annotated[str, matching(re.compile(r"^#?[a-z0-9._-]{1,80}$"), "a Slack channel")]
# A file on the machine running mindscape (relative: to the folder of platform.yaml).
SecretFile = Annotated[
    str, Field(min_length=1, max_length=4096), matching(re.compile(r"^[^\x00-\x1f\x7f]+$"), "a file path")
]
Severity = Literal["critical", "warning", "info"]


class SecretSource(Strict):
    """Where one secret comes from: a variable (`secret_env`) or a file (`secret_file`), read by
    `mindscape up`/`render` and handed to Alertmanager as a file; never both."""

    secret_env: EnvName | None = None
    secret_file: SecretFile | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretSource:
        if self.secret_env and self.secret_file:
            raise ValueError("set secret_env (a variable's name) or secret_file (a path), not both")
        return self

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_env or self.secret_file)


class Thresholds(Strict):
    """Where the built-in alerts fire."""

    postgres_connections_ratio: float = Field(0.8, gt=0, le=1)
    postgres_deadlocks: int = Field(0, ge=0, le=1000000)
    postgres_transaction_max: Duration = Duration("15m")
    redis_memory_ratio: float = Field(0.9, gt=0, le=1)
    pgbouncer_waiting_clients: int = Field(0, ge=0, le=1000000)
    http_error_ratio: float = Field(0.05, gt=0, le=1)
    http_latency_p95: Duration = Duration("500ms")
    disk_free_ratio: float = Field(0.1, gt=0, lt=1)
    memory_available_ratio: float = Field(0.1, gt=0, lt=1)
    # Failed logins a minute (over 5 minutes) at the identity service before LoginFailureSpike.
    login_failures_per_minute: float = Field(10, gt=0, le=1000000)
    # Not set: backups.schedule's longest gap between runs plus 2h (settings/schedule.py).
    backup_max_age: Duration | None = None


class AlertRule(Strict):
    alert: AlertName
    expr: Text
    for_: Duration = Field(Duration("5m"), alias="for")
    severity: Severity = "warning"
    summary: Text
    description: Text = ""


class Receiver(SecretSource):
    """Where alerts go. The secret (a Slack or webhook URL's token, a PagerDuty routing key, an
    SMTP password) comes from `secret_env` or `secret_file`."""

    name: Name
    kind: Literal["webhook", "slack", "email", "pagerduty"] = "webhook"
    url: HttpUrl | None = None
    channel: SlackChannel | None = None
    to: Email | None = None
    severities: list[Severity] = []


class Smtp(Strict):
    """The mail relay every `email` receiver sends through. Its password comes from
    `password_env` or `password_file`, never from this file."""

    host: Hostname
    port: int = Field(587, ge=1, le=65535)
    from_: Email = Field(alias="from")
    username: Text | None = None
    password_env: EnvName | None = None
    password_file: SecretFile | None = None
    require_tls: bool = True

    @model_validator(mode="after")
    def _password(self) -> Smtp:
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs `username` too")
        return self


class Watchdog(SecretSource):
    """An alert that always fires, sent to its own receiver: a dead man's switch service at
    `url` expects it every `repeat_interval` and pages someone when it stops (Prometheus,
    Alertmanager or the path between them is broken). `secret_env`/`secret_file`: a bearer token."""

    enabled: bool = True
    url: HttpUrl | None = None
    repeat_interval: Duration = Duration("1m")


class Route(Strict):
    group_by: list[Annotated[str, matching(re.compile(r"^[a-z_][a-z0-9_]*$"), "a label name")]] = [
        "alertname",
        "service",
    ]
    group_wait: Duration = Duration("30s")
    group_interval: Duration = Duration("5m")
    repeat_interval: Duration = Duration("4h")


class Monitoring(Strict):
    targets: list[ScrapeTarget] = []
    thresholds: Thresholds = Thresholds()
    rules: list[AlertRule] = []
    receivers: list[Receiver] = []
    smtp: Smtp | None = None
    watchdog: Watchdog = Watchdog()
    route: Route = Route()
    # With environment: production, alerts that reach no receiver (or a Watchdog with no url)
    # make platform.yaml invalid; true runs such a platform on purpose (a warning, as elsewhere).
    receivers_optional: bool = False
    # Where the rendered runbooks are read, e.g. https://github.com/org/repo/blob/main: each
    # alert's runbook_url is this plus the runbook's path. Not set: the path alone.
    runbook_base_url: HttpUrl | None = None


WATCHDOG_RECEIVER = "watchdog"  # a name receivers may not take (check_platform says so)

__all__ = ["AlertRule", "Monitoring", "Receiver", "Route", "Smtp", "Thresholds", "WATCHDOG_RECEIVER", "Watchdog"]
