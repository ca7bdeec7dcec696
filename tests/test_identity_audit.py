"""The identity service's audit trail, e-mails, alerts and dashboard row as rendered (no engine):
the gateway writes an audit line for each login and settings submission; the courier sends
through monitoring.smtp (its password only in .mindscape/), else into the log store, else not
at all; IdentityServiceDown and LoginFailureSpike with their runbook sections; an Identity row;
`auth set-roles` refuses a role security.auth does not define. The live proofs are in
tests/test_identity_audit_engine.py, the alerts' promtool cases in tests/promtool/identity.yml."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.dashboard import overview
from mindscape_ops.services import identity, identity_courier, identity_keys

from .conftest import EXAMPLES, run_cli

SECRETS = {"IDENTITY_DB_PASSWORD": "db-secret-value", "IDENTITY_COOKIE_SECRET": "cookie-secret-value"}
SMTP = "monitoring:\n  smtp: {host: mail.example.com, from: auth@example.com, username: relay, password_env: RELAY}\n"


def example(tmp_path: Path, extra: str = "", without: tuple[str, ...] = ()):
    local = tmp_path / "local"
    local.mkdir(exist_ok=True)
    data = yaml.safe_load((EXAMPLES / "local" / "platform.yaml").read_text())
    for name in without:
        data["services"].pop(name)
    (local / "platform.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (local / "auth.yaml").write_text((EXAMPLES / "local" / "auth.yaml").read_text())
    files = [local / "platform.yaml", local / "auth.yaml"]
    if extra:
        (local / "extra.yaml").write_text(extra)
        files.append(local / "extra.yaml")
    return load(files, env={}).platform


def test_without_a_relay_each_email_is_a_line_of_the_log_store(tmp_path: Path) -> None:
    platform = example(tmp_path)
    assert identity_courier.courier(platform) == "log_store"
    files = render_platform(platform)
    courier = yaml.safe_load(files["deploy/identity/kratos.yml"])["courier"]
    assert courier["delivery_strategy"] == "http"
    request = courier["http"]["request_config"]
    assert request["url"] == "http://victorialogs:9428/insert/loki/api/v1/push"
    assert request["body"] == "file:///etc/kratos/courier.jsonnet"
    body = files["deploy/identity/courier.jsonnet"]
    assert '"event.attrs.io.mindscape.project": "local"' in body and "template_data" not in body.split("#]")[-1]
    spec = identity.container(platform)
    assert "--watch-courier" in spec.command
    assert any(m.target == "/etc/kratos/courier.jsonnet" for m in spec.mounts)


def test_with_neither_relay_nor_store_emails_stay_queued(tmp_path: Path) -> None:
    platform = example(tmp_path, without=("victorialogs",))
    assert identity_courier.courier(platform) == "queue"
    files = render_platform(platform)
    assert "deploy/identity/courier.jsonnet" not in files
    assert "delivery_strategy" not in files["deploy/identity/kratos.yml"]
    assert "--watch-courier" not in identity.container(platform).command


def test_with_monitoring_smtp_the_relay_password_stays_in_mindscape(tmp_path: Path, monkeypatch) -> None:
    platform = example(tmp_path, SMTP)
    assert identity_courier.courier(platform) == "smtp"
    files = render_platform(platform)
    courier = yaml.safe_load(files["deploy/identity/kratos.yml"])["courier"]
    assert courier == {"smtp": {"from_address": "auth@example.com"}}
    monkeypatch.setenv("RELAY", "p@ss/word")
    project = SimpleNamespace(root=tmp_path / "local", platform=platform)
    assert identity.prepare(project, SECRETS) == []
    written = json.loads((tmp_path / "local" / identity_keys.PRIVATE / identity.SECRETS_FILE).read_text())
    assert written["courier"]["smtp"]["connection_uri"] == "smtp://relay:p%40ss%2Fword@mail.example.com:587/"
    assert "p@ss/word" not in "\n".join(files.values()) and "p%40ss" not in "\n".join(files.values())
    assert identity.inputs(platform).variables == ("RELAY",)
    monkeypatch.delenv("RELAY")
    (warning,) = identity.prepare(project, SECRETS)
    assert warning == "monitoring.smtp: $RELAY is not set or empty; the identity service's e-mails will fail"


def test_a_relay_on_this_machine_is_reached_through_the_host_gateway(tmp_path: Path) -> None:
    """host.docker.internal resolves in the identity container only with the host-gateway entry
    (Linux engines have none): without it the courier fails `no such host` and drops each e-mail."""
    assert not identity.container(example(tmp_path, SMTP)).reach_host  # mail.example.com: DNS
    platform = example(tmp_path, SMTP.replace("mail.example.com", "host.docker.internal"))
    assert identity.container(platform).reach_host
    compose = yaml.safe_load(render_platform(platform)["deploy/compose.yaml"])
    assert compose["services"]["identity"]["extra_hosts"] == ["host.docker.internal:host-gateway"]


@pytest.mark.parametrize(
    ("port", "require_tls", "expected"),
    [
        (465, True, "smtps://relay:pw@mail.example.com:465/"),
        (25, False, "smtp://relay:pw@mail.example.com:25/?disable_starttls=true"),
    ],
)
def test_the_relay_uri_follows_port_and_tls(tmp_path: Path, port: int, require_tls: bool, expected: str) -> None:
    extra = SMTP.replace("password_env: RELAY", f"password_env: RELAY, port: {port}, require_tls: {require_tls}")
    assert identity_courier.smtp_uri(example(tmp_path, extra), "pw") == expected


def test_the_gateway_audits_login_and_settings_submissions(tmp_path: Path) -> None:
    files = render_platform(example(tmp_path))
    conf = files["deploy/gateway/nginx.conf"]
    for flow in ("login", "settings"):
        block = conf[conf.index(f"location = /_mindscape/identity/self-service/{flow} {{") :]
        block = block[: block.index("}")]
        assert "limit_req zone=mindscape_login" in block and "js_content mindscape_auth.selfService;" in block
    assert "access_log /dev/stdout mindscape_identity if=$mindscape_identity_event;" in conf
    line = conf[conf.index("log_format mindscape_identity") : conf.index("access_log /dev/stdout mindscape_identity")]
    assert '"uri":"$uri"' in line  # the log store's message of the line
    assert '"identifier":"$mindscape_identity_identifier"' in line and "password" not in line
    script = files["deploy/gateway/auth.js"]
    assert "export default {guard, selfService};" in script and "mfa_enrolled" in script


def test_the_alerts_and_their_runbook(tmp_path: Path) -> None:
    platform = example(tmp_path, "monitoring:\n  thresholds: {login_failures_per_minute: 3}\n")
    files = render_platform(platform)
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(files["deploy/prometheus/rules/services.yml"])["groups"]
        for rule in group["rules"]
    }
    assert rules["IdentityServiceDown"]["expr"] == 'up{job="identity"} == 0'
    assert rules["LoginFailureSpike"]["expr"].endswith("* 60 > 3")
    assert not any(
        name == "InstanceDown" and 'job="identity"' in rule["expr"] for name, rule in rules.items()
    )  # its own alert says it
    runbook = files["docs/runbooks/alerts.md"]
    assert "## IdentityServiceDown" in runbook and "## LoginFailureSpike" in runbook
    assert "`mindscape auth disable EMAIL`" in runbook


def test_the_dashboard_has_an_identity_row(tmp_path: Path) -> None:
    panels = overview(example(tmp_path))["panels"]
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert "Identity" in rows
    after = panels[[p.get("title") for p in panels].index("Identity") + 1 :]
    titles = [p["title"] for p in after[:3]]
    assert titles == ["Identity service up", "Logins a minute", "Identity service answers"]
    # `up` and http_requests_total are other jobs' too: its own job, whatever $job selects
    exprs = [target["expr"] for panel in after[:3] for target in panel["targets"]]
    assert exprs and all('job="identity", job=~"$job"' in expr for expr in exprs)


def test_set_roles_refuses_an_unknown_role(tmp_path: Path) -> None:
    example(tmp_path)
    result = run_cli(
        "-f", "platform.yaml", "-f", "auth.yaml", "auth", "set-roles", "ada@example.com", "root", cwd=tmp_path / "local"
    )
    assert result.returncode == 2, result.stderr
    assert "unknown role(s): root" in result.stderr and "Traceback" not in result.stderr
