"""The rules that need the whole platform at once (config/rules.py and the services' own
`problems`): each broken platform gives its problem at the right `file:line:col: path`, all
problems at once, and a platform that keeps the rule gives none. In-process and fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError

HEAD = "version: 1\nproject: shop\n"
HOOK = "'https://hooks.example.com/x'"
OTHER_PORT = "pick another port or use `port: auto`"

# name -> (platform.yaml after HEAD, the problems, `file:` prefix left out)
BROKEN: dict[str, tuple[str, list[str]]] = {
    "needs-a-dependency": (
        "services: {pgbouncer: {}}\n",
        ["3:23: services.pgbouncer: needs services.postgres, which is not enabled; add it or disable pgbouncer"],
    ),
    "exporter-via-a-missing-pgbouncer": (
        "services:\n  postgres: {}\n  postgres_exporter: {via_pgbouncer: true}\n",
        ["5:38: services.postgres_exporter.via_pgbouncer: needs services.pgbouncer enabled"],
    ),
    "receivers-without-alertmanager": (
        f"services: {{prometheus: {{}}}}\nmonitoring:\n  receivers: [{{name: ops, url: {HOOK}}}]\n",
        ["5:14: monitoring.receivers: alerts need services.alertmanager; add it to services"],
    ),
    "backup-of-a-disabled-service": (
        "services: {postgres: {}}\nbackups: {services: [postgres, redis]}\n",
        ["4:32: backups.services[1]: redis is not an enabled service"],
    ),
    "target-named-twice": (
        "services: {prometheus: {}}\nmonitoring:\n"
        "  targets: [{name: app, targets: ['h:1']}, {name: app, targets: ['h:2']}]\n",
        ["5:51: monitoring.targets[1].name: target name 'app' is used twice; names must be unique"],
    ),
    "target-named-like-a-service": (
        "services: {prometheus: {}}\nmonitoring:\n  targets: [{name: prometheus, targets: ['h:1']}]\n",
        ["5:20: monitoring.targets[0].name: target name 'prometheus' is used twice; names must be unique"],
    ),
    "prometheus-target-named-like-a-monitoring-target": (
        "services:\n  prometheus: {targets: [{name: app, targets: ['h:1']}]}\n"
        "monitoring:\n  targets: [{name: app, targets: ['h:2']}]\n",
        ["4:33: services.prometheus.targets[0].name: target name 'app' is used twice; names must be unique"],
    ),
    "receiver-named-twice": (
        f"services: {{prometheus: {{}}, alertmanager: {{}}}}\nmonitoring:\n"
        f"  receivers: [{{name: ops, url: {HOOK}}}, {{name: ops, url: {HOOK}}}]\n",
        ["5:71: monitoring.receivers[1].name: receiver 'ops' is defined twice"],
    ),
    "receivers-missing-what-they-need": (
        "services: {prometheus: {}, alertmanager: {}}\nmonitoring:\n"
        "  receivers: [{name: s, kind: slack}, {name: p, kind: pagerduty}, {name: e, kind: email}]\n",
        [
            "5:15: monitoring.receivers[0].secret_env: a slack receiver needs secret_env or secret_file: "
            "the variable or file holding its webhook URL or routing key",
            "5:39: monitoring.receivers[1].secret_env: a pagerduty receiver needs secret_env or secret_file: "
            "the variable or file holding its webhook URL or routing key",
            "5:67: monitoring.receivers[2].to: an email receiver needs `to`",
            "5:83: monitoring.receivers[2].kind: an email receiver needs monitoring.smtp (host, from): the mail relay",
        ],
    ),
    "timeouts-in-the-wrong-order": (
        "security:\n  auth:\n    sessions: {idle_timeout: 13h}\n    jwt: {access_token_ttl: 8d}\n"
        "  limits: {client_timeout: 500ms}\n",
        [
            "5:30: security.auth.sessions.idle_timeout: is longer than absolute_timeout",
            "6:29: security.auth.jwt.access_token_ttl: is longer than refresh_token_ttl",
            "7:11: security.limits: timeouts must be at least 1s",
        ],
    ),
    "upstream-timeout-under-a-second": (
        "security:\n  limits: {upstream_timeout: 999ms}\n",
        ["4:11: security.limits: timeouts must be at least 1s"],
    ),
    "zero-health-timing": (
        "services:\n  redis: {health: {timeout: 0s, interval: 0s}}\n",
        [
            "4:29: services.redis.health.timeout: must be longer than 0s",
            "4:43: services.redis.health.interval: must be longer than 0s",
        ],
    ),
    "same-port-on-every-address": (
        "services:\n  postgres: {port: 7000}\n  redis: {port: 7000, bind: 0.0.0.0}\n",
        [f"5:17: services.redis.port: port 7000 is already used by services.postgres; {OTHER_PORT}"],
    ),
    # services are checked in start order (postgres first), whatever order the file has
    "every-address-first-in-the-file": (
        "services:\n  redis: {port: 7000, bind: 0.0.0.0}\n  postgres: {port: 7000}\n",
        [f"4:17: services.redis.port: port 7000 is already used by services.postgres; {OTHER_PORT}"],
    ),
}


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + text)
    with pytest.raises(ConfigError) as caught:
        load([path], env={})
    return [problem.removeprefix(f"{path}:") for problem in caught.value.problems]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_rule_is_reported_in_place(tmp_path: Path, case: str):
    text, expected = BROKEN[case]
    assert problems_of(tmp_path, text) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path):
    cases = ("needs-a-dependency", "zero-health-timing", "upstream-timeout-under-a-second")
    problems = problems_of(
        tmp_path,
        "services: {pgbouncer: {}, redis: {health: {timeout: 0s, interval: 0s}}}\n"
        "security:\n  limits: {upstream_timeout: 999ms}\n",
    )
    wanted = [message.split(": ", 1)[1] for case in cases for message in BROKEN[case][1]]
    assert sorted(problem.split(": ", 1)[1] for problem in problems) == sorted(wanted)


@pytest.mark.parametrize(
    "text",
    [
        "services:\n  postgres: {port: 7000}\n  redis: {port: 7001, bind: 0.0.0.0}\n",
        "services:\n  postgres: {port: auto}\n  redis: {port: auto}\n",
        "services: {postgres: {}, pgbouncer: {}, postgres_exporter: {via_pgbouncer: true}}\n",
        "services: {prometheus: {}, alertmanager: {}}\nmonitoring:\n"
        "  receivers: [{name: s, kind: slack, secret_env: SLACK_URL}, {name: e, kind: email, to: a@example.com}]\n"
        "  smtp: {host: mail.example.com, from: am@example.com}\n"
        "  targets: [{name: app, targets: ['h:1']}, {name: worker, targets: ['h:2']}]\n",
        "services: {postgres: {}}\nbackups: {enabled: false, services: [redis]}\n",  # off: not checked
        "security:\n  auth:\n    sessions: {idle_timeout: 12h}\n    jwt: {access_token_ttl: 7d}\n"
        "  limits: {client_timeout: 1s, upstream_timeout: 1s}\n",
    ],
    ids=["other-port", "auto-ports", "exporter-via-pgbouncer", "receivers-and-targets", "backups-off", "equal-limits"],
)
def test_a_platform_that_keeps_the_rules_loads(tmp_path: Path, text: str):
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + text)
    assert load([path], env={}).platform.project == "shop"


def test_one_port_on_two_distinct_addresses_is_allowed_but_not_beside_0_0_0_0(tmp_path):
    from mindscape_ops.config.loader import load
    from mindscape_ops.errors import ConfigError

    path = tmp_path / "platform.yaml"
    path.write_text(
        "version: 1\nproject: p\nservices:\n"
        "  redis: {port: 7000, bind: 127.0.0.1}\n  prometheus: {port: 7000, bind: 127.0.0.2}\n"
    )
    assert load([path], env={}).platform.services.prometheus.port == 7000
    path.write_text(path.read_text() + "  alertmanager: {port: 7000, bind: 0.0.0.0}\n")
    with pytest.raises(ConfigError) as caught:
        load([path], env={})
    assert any("port 7000 is already used by services.redis" in p for p in caught.value.problems)
