"""Where alerts go, as `render` (and so `up` and `init`) prepares it: Alertmanager's secrets
copied from variables or files into .mindscape/alertmanager (never into a rendered file),
and a loud warning when alerts reach nobody. The `check` gate says the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindscape_ops.check.model import Failed, Skipped
from mindscape_ops.services import alertmanager_gates

from .conftest import run_cli

HEAD = "version: 1\nproject: alerts\n"
NO_RECEIVER = "warning: alerts reach nobody: no receiver is set (monitoring.receivers"


def alerting_warnings(stderr: str) -> list[str]:
    """The warnings about where alerts go (other sections warn about their own settings)."""
    words = ("alerts", "receiver", "monitoring.")
    return [line for line in stderr.splitlines() if line.startswith("warning:") and any(w in line for w in words)]


def test_secrets_come_from_variables_and_files_and_stay_out_of_rendered_files(tmp_path: Path):
    (tmp_path / "hook.token").write_text("token-from-file\n")
    (tmp_path / "platform.yaml").write_text(
        HEAD + "environment: production\n"
        "services: {prometheus: {}, alertmanager: {}}\n"
        "monitoring:\n"
        "  smtp: {host: mail.example.com, from: am@example.com, username: am, password_env: MS_TEST_SMTP}\n"
        "  watchdog: {url: 'https://deadman.example.com/ping', secret_file: hook.token}\n"
        "  receivers:\n"
        "    - {name: mail, kind: email, to: ops@example.com}\n"
        "    - {name: hook, url: 'https://hooks.example.com/in', secret_file: hook.token}\n"
    )
    done = run_cli("render", cwd=tmp_path, env={"MS_TEST_SMTP": "smtp-password"})
    assert done.returncode == 0, done.stderr
    assert not alerting_warnings(done.stderr)
    folder = tmp_path / ".mindscape/alertmanager"
    assert (folder / "_smtp").read_text() == "smtp-password"
    assert (folder / "hook").read_text() == (folder / "_watchdog").read_text() == "token-from-file"
    rendered = (tmp_path / "deploy/alertmanager/alertmanager.yml").read_text()
    assert "smtp-password" not in rendered and "token-from-file" not in rendered
    assert 'smtp_auth_password_file: "/etc/alertmanager-secrets/_smtp"' in rendered

    # The file goes away and the variable is unset: the last values are kept, and said to be.
    (tmp_path / "hook.token").unlink()
    again = run_cli("render", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not alerting_warnings(again.stderr)
    assert (folder / "_smtp").read_text() == "smtp-password"


def test_a_missing_secret_file_is_warned_about(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(
        HEAD + "services: {prometheus: {}, alertmanager: {}}\n"
        "monitoring:\n  receivers: [{name: chat, kind: slack, secret_file: /nonexistent/slack.url}]\n"
    )
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: receiver chat: /nonexistent/slack.url" in done.stderr
    assert "cannot be read; alerts to it will fail until it is" in done.stderr


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ("{prometheus: {}, alertmanager: {}}", NO_RECEIVER),
        ("{prometheus: {}}", "warning: alerts reach nobody: Prometheus evaluates alert rules but services.alertm"),
    ],
)
def test_render_says_loudly_when_alerts_reach_nobody(tmp_path: Path, services: str, expected: str):
    (tmp_path / "platform.yaml").write_text(HEAD + f"services: {services}\n")
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert expected in done.stderr


def test_a_severity_no_receiver_takes_is_warned_about(tmp_path: Path):
    """Receivers only for critical: warnings went to the empty default receiver, silently."""
    receivers = "  receivers: [{name: pager, url: 'http://alerts.internal:9000/', severities: [critical]}]\n"
    (tmp_path / "platform.yaml").write_text(
        HEAD + "services: {prometheus: {}, alertmanager: {}}\nmonitoring:\n" + receivers
    )
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: alerts reach nobody: no receiver takes severity warning (" in done.stderr
    assert "severity critical" not in done.stderr and NO_RECEIVER not in done.stderr
    (tmp_path / "platform.yaml").write_text(
        HEAD + "services: {prometheus: {}, alertmanager: {}}\nmonitoring:\n" + receivers.replace("[critical]", "[]")
    )
    assert "alerts reach nobody" not in run_cli("render", cwd=tmp_path).stderr


class _Ctx:
    """Enough of a CheckContext for the receivers gate."""

    def __init__(self, tmp_path: Path, services: str, config: str = "") -> None:
        from mindscape_ops.config.loader import load

        (tmp_path / "platform.yaml").write_text(HEAD + f"services: {services}\n")
        self.platform = load([tmp_path / "platform.yaml"], env={}).platform
        self.config = config

    def require(self, service: str) -> None:
        if service not in self.platform.services.enabled():
            raise Skipped(f"services.{service} is not enabled")

    def get_json(self, service: str, path: str) -> dict:
        assert (service, path) == ("alertmanager", "/api/v2/status")
        return {"config": {"original": self.config}}


def test_the_receivers_gate_fails_when_alerts_reach_nobody(tmp_path: Path):
    watchdog_only = "receivers:\n- name: watchdog\n  webhook_configs: [{url: 'http://x/'}]\n- name: default\n"
    with pytest.raises(Failed, match="alerts reach nobody: no receiver delivers anywhere \\(default\\)"):
        alertmanager_gates.receivers(_Ctx(tmp_path, "{prometheus: {}, alertmanager: {}}", watchdog_only))
    with pytest.raises(Failed, match="services.alertmanager is not enabled"):
        alertmanager_gates.receivers(_Ctx(tmp_path, "{prometheus: {}}"))
    with pytest.raises(Skipped):
        alertmanager_gates.receivers(_Ctx(tmp_path, "{postgres: {}}"))
    real = watchdog_only + "- name: ops\n  webhook_configs: [{url: 'http://y/'}]\n"
    both = "{prometheus: {}, alertmanager: {}}"
    assert alertmanager_gates.receivers(_Ctx(tmp_path, both, real)) == "alerts reach ops"
    gate = next(g for g in alertmanager_gates.GATES if g.id == "monitoring.receivers")
    assert gate.severity == "warning"
