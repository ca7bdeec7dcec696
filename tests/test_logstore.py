"""The log store without an engine: what each container's spec and the compose export say about
shipping, the LogsQL `mindscape logs` sends, rows as text, platform rules, the alerts (promtool
unit tests). The Go recipes refusing bad declarations: tests/test_images.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mindscape_ops.adapters.logstore import parse_rows, quoted
from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError
from mindscape_ops.provision.logstore import as_text, audit_rows, engine_since, service_query, split_pipes
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.spec import LOG_OPTIONS, container_specs

from .conftest import run_cli


def platform(tmp_path: Path, store: str | None = "{}", extra: str = ""):
    lines = ["version: 1", "project: logs1", "services:", "  postgres: {}", "  gateway: {}", "  prometheus: {}"]
    if store is not None:
        lines.append(f"  victorialogs: {store}")
    path = tmp_path / "platform.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return load([path], env={}).platform


def test_every_other_container_ships_to_the_ingest_port_with_its_labels(tmp_path: Path):
    specs = container_specs(platform(tmp_path, "{ingest_port: 19429, bind: 0.0.0.0}"))
    for name in ("postgres", "gateway", "prometheus"):
        spec = specs[name]
        assert spec.log_driver == "splunk"
        options = spec.log_options
        assert options["splunk-url"] == "http://127.0.0.1:19429"  # the engine posts on this machine
        assert options["tag"] == f"logs1-{name}" and options["splunk-format"] == "json"
        assert options["labels"] == "io.mindscape.project,io.mindscape.service"
        assert options["mode"] == "non-blocking" and options["cache-max-size"] == LOG_OPTIONS["max-size"]
    store = specs["victorialogs"]
    assert store.log_driver == "json-file" and store.log_options == dict(LOG_OPTIONS)  # not to itself
    assert store.extra_ports == {9429: 19429}
    assert "-httpListenAddr=:9429" in store.command


def test_retention_and_disk_limit_reach_the_command(tmp_path: Path):
    command = container_specs(platform(tmp_path, "{retention: 2w, max_disk: 300mb}"))["victorialogs"].command
    assert "-retentionPeriod=336h" in command
    assert f"-retention.maxDiskSpaceUsageBytes={300 * 1024**2}" in command
    assert "-storageDataPath=/victoria-logs-data" in command


def test_without_the_store_or_with_ingest_port_null_containers_keep_json_file(tmp_path: Path):
    for store in (None, "{enabled: false}", "{ingest_port: null}"):
        specs = container_specs(platform(tmp_path, store))
        for name in ("postgres", "gateway", "prometheus"):
            assert (specs[name].log_driver, specs[name].log_options) == ("json-file", dict(LOG_OPTIONS))
    specs = container_specs(platform(tmp_path, "{ingest_port: null}"))
    assert specs["victorialogs"].extra_ports == {} and "-httpListenAddr=:9429" not in specs["victorialogs"].command


def test_the_compose_export_ships_the_same_way(tmp_path: Path):
    p = platform(tmp_path, "{ingest_port: 19429}")
    compose = yaml.safe_load(render_platform(p)[f"{p.paths.deploy}/compose.yaml"])
    specs = container_specs(p)
    for name, entry in compose["services"].items():
        assert entry["logging"] == {"driver": specs[name].log_driver, "options": specs[name].log_options}
    assert compose["services"]["gateway"]["logging"]["driver"] == "splunk"


@pytest.mark.parametrize(
    ("store", "where", "words"),
    [
        ("{retention: 12h}", "services.victorialogs.retention", "minimum of 1d"),
        ("{max_disk: 10kb}", "services.victorialogs.max_disk", "at least 1mb"),
        ("{ingest_port: 8080}", "services.victorialogs.ingest_port", "services.gateway.port"),
        ("{ingest_port: 0}", "services.victorialogs.ingest_port", ""),
    ],
)
def test_bad_settings_are_refused_where_they_are(tmp_path: Path, store: str, where: str, words: str):
    with pytest.raises(ConfigError) as caught:
        platform(tmp_path, store)
    text = "\n".join(map(str, caught.value.problems))
    assert where in text and words in text


class NoEngine:
    """The engine `up` asks about ports: no container publishes anything."""

    def published_port(self, container, container_port):
        return None

    def publishers_of(self, port):
        return []


def auto_project(tmp_path: Path):
    from mindscape_ops.workspace.project import open_project

    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: logs4\nservices:\n  postgres: {port: auto}\n"
        "  victorialogs: {port: auto, ingest_port: auto}\n"
    )
    return open_project([tmp_path / "platform.yaml"])


def test_an_auto_ingest_port_is_picked_by_up_kept_in_state_and_read_back(tmp_path: Path):
    from mindscape_ops.check.context import CheckContext
    from mindscape_ops.provision.desired import resolve_ports, setting_ports
    from mindscape_ops.provision.endpoints import platform_as_run

    project = auto_project(tmp_path)
    assert platform_as_run(project).services.victorialogs.ingest_port == "auto"  # never picked
    picked = setting_ports(project, NoEngine(), pick=True).services.victorialogs.ingest_port
    state = json.loads((tmp_path / ".mindscape" / "state.json").read_text())
    assert isinstance(picked, int) and state["ports"] == {"victorialogs.ingest_port": picked}
    specs = container_specs(setting_ports(project, NoEngine(), pick=True))  # kept, not picked again
    assert specs["victorialogs"].extra_ports == {9429: picked}
    assert specs["postgres"].log_options["splunk-url"] == f"http://127.0.0.1:{picked}"
    assert platform_as_run(project).services.victorialogs.ingest_port == picked  # plan, status
    assert CheckContext(project).as_run().services.victorialogs.ingest_port == picked  # check's gates
    # the `port: auto` ports picked next avoid it, and keep it in state
    ports = resolve_ports(project, specs, pick=True)
    assert picked not in ports.values()
    assert (
        json.loads((tmp_path / ".mindscape" / "state.json").read_text())["ports"]["victorialogs.ingest_port"] == picked
    )
    # what is rendered never depends on state: an unpicked `auto` exports as 9429 in compose
    compose = yaml.safe_load(render_platform(project.platform)[f"{project.platform.paths.deploy}/compose.yaml"])
    assert "127.0.0.1:9429:9429" in compose["services"]["victorialogs"]["ports"]
    assert compose["services"]["postgres"]["logging"]["options"]["splunk-url"] == "http://127.0.0.1:9429"


@pytest.mark.parametrize("kept", ['"9430"', "0", "70000", "true", "null", "[1]"])
def test_a_kept_ingest_port_of_the_wrong_shape_is_ignored_and_picked_anew(tmp_path: Path, kept: str):
    from mindscape_ops.provision.desired import setting_ports
    from mindscape_ops.provision.endpoints import platform_as_run

    project = auto_project(tmp_path)
    (tmp_path / ".mindscape").mkdir()
    (tmp_path / ".mindscape" / "state.json").write_text(f'{{"ports": {{"victorialogs.ingest_port": {kept}}}}}')
    assert platform_as_run(project).services.victorialogs.ingest_port == "auto"
    picked = setting_ports(project, NoEngine(), pick=True).services.victorialogs.ingest_port
    assert isinstance(picked, int) and 1024 < picked < 65536


def test_a_kept_ingest_port_taken_since_by_another_program_is_picked_anew(tmp_path: Path):
    import socket

    from mindscape_ops.provision.desired import setting_ports

    project = auto_project(tmp_path)
    first = setting_ports(project, NoEngine(), pick=True).services.victorialogs.ingest_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first))
        holder.listen()
        assert setting_ports(project, NoEngine(), pick=False).services.victorialogs.ingest_port == first  # plan
        again = setting_ports(project, NoEngine(), pick=True).services.victorialogs.ingest_port  # up
    assert again != first
    assert (
        json.loads((tmp_path / ".mindscape" / "state.json").read_text())["ports"]["victorialogs.ingest_port"] == again
    )


def test_an_auto_ingest_port_lost_from_state_is_the_running_stores(tmp_path: Path):
    from mindscape_ops.provision.desired import setting_ports

    class Running(NoEngine):
        def published_port(self, container, container_port):
            return 41234 if (container, container_port) == ("logs4-victorialogs", 9429) else None

    project = auto_project(tmp_path)
    assert setting_ports(project, Running(), pick=False).services.victorialogs.ingest_port == 41234


def test_port_and_ingest_port_both_auto_are_no_conflict(tmp_path: Path):
    p = platform(tmp_path, "{port: auto, ingest_port: auto}", "")
    assert p.services.victorialogs.ingest_port == "auto"
    with pytest.raises(ConfigError) as caught:
        platform(tmp_path, "{ingest_port: automatic}")
    assert "services.victorialogs.ingest_port" in "\n".join(map(str, caught.value.problems))


def test_the_query_selects_project_and_service_and_keeps_the_user_filter_apart():
    logsql = service_query("p1", "gateway", 'status:>=500 or "x"', "5m")
    assert logsql == (
        '"event.attrs.io.mindscape.project":="p1" AND "event.attrs.io.mindscape.service":="gateway"'
        ' AND _time:5m AND (status:>=500 or "x")'
    )
    assert service_query('a"b', "s").startswith('"event.attrs.io.mindscape.project":="a\\"b" AND ')
    assert quoted('say "hi"') == '"say \\"hi\\""'


def test_pipes_of_the_user_query_follow_the_service_scope():
    """`--query 'error | limit 5'` was refused by the store: the pipe sat inside the parentheses."""
    assert service_query("p1", "redis", "Ready | limit 1").endswith(" AND (Ready ) | limit 1")
    assert split_pipes('"a|b" or (x | y) | fields _msg') == ('"a|b" or (x | y) ', "fields _msg")
    assert split_pipes(r'"a\"|b" | limit 2') == (r'"a\"|b" ', "limit 2")
    assert split_pipes("`x|y` and 'p|q'") == ("`x|y` and 'p|q'", "")
    assert service_query("p1", "redis", "| limit 3").endswith('"redis" | limit 3')


def test_rows_read_as_one_line_each_with_the_fields_of_a_json_line():
    rows = parse_rows(
        b'{"_time":"2026-01-01T00:00:00Z","_msg":"/a","event.line.status":"200","event.line.request_id":"r1",'
        b'"event.tag":"p-gateway"}\n\n{"_time":"2026-01-01T00:00:01Z","_msg":"LOG: ready"}\n'
    )
    assert [as_text(row) for row in rows] == [
        "2026-01-01T00:00:00Z /a request_id=r1 status=200",
        "2026-01-01T00:00:01Z LOG: ready",
    ]


def test_bad_since_and_follow_with_query_are_usage_errors(tmp_path: Path):
    platform(tmp_path)
    bad = run_cli("logs", "gateway", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr
    both = run_cli("logs", "gateway", "--follow", "--query", "x", cwd=tmp_path)
    assert both.returncode == 2 and "--follow" in both.stderr


def test_a_since_longer_than_the_epoch_reads_every_engine_line():
    """docker-py refuses a since <= 0 (that was `logs --since 99999d` exiting 3, 'cannot reach
    the Docker engine', with the store down)."""
    assert engine_since(300, now=1_000_000.0) == 999_700
    assert engine_since(99_999_999_999 * 86400, now=1_000_000.0) == 1
    assert engine_since(1_000_000, now=1_000_000.0) == 1


def test_logs_mindscape_reads_the_audit_entries_without_the_store(tmp_path: Path):
    """README: audit entries go to the store as service `mindscape`; `logs mindscape` was refused
    ('not an enabled service'). Without a running store it reads .mindscape/audit.log."""
    platform(tmp_path, store=None)
    (tmp_path / ".mindscape").mkdir()
    entries = [
        {"command": "up", "outcome": "ok", "time": "2020-01-01T00:00:00+00:00"},
        {"command": "down", "outcome": "ok", "time": "2099-01-01T00:00:00+00:00"},
    ]
    (tmp_path / ".mindscape" / "audit.log").write_text("".join(json.dumps(e) + "\n" for e in entries) + "\n")
    last = run_cli("logs", "mindscape", "--tail", "1", "--json", cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout) == entries[1:]
    recent = run_cli("logs", "mindscape", "--since", "1h", cwd=tmp_path)
    assert recent.returncode == 0 and "down" in recent.stdout and '"up"' not in recent.stdout
    assert audit_rows(tmp_path / "absent.log", "all", None, now=0.0) == []
    assert audit_rows(tmp_path / ".mindscape" / "audit.log", 0, None, now=0.0) == []
    other = run_cli("logs", "nosuch", cwd=tmp_path)
    assert other.returncode == 2 and "not an enabled service" in other.stderr


def test_the_store_alerts_join_the_built_in_list_with_their_runbook(tmp_path: Path):
    """Their promtool cases live in tests/promtool/logs.yml (run by test_alert_rules)."""
    p = platform(tmp_path)
    files = render_platform(p)
    rules = yaml.safe_load(files[f"{p.paths.deploy}/prometheus/rules/services.yml"])
    logs = next(group for group in rules["groups"] if group["name"] == "logs")
    assert [rule["alert"] for rule in logs["rules"]] == ["LogStoreDown", "LogIngestionStopped"]
    assert logs["rules"][0]["annotations"]["runbook_url"].endswith("alerts.md#logstoredown")
    assert "## LogIngestionStopped" in files[f"{p.paths.runbooks}/alerts.md"]


def test_no_store_alerts_without_the_store(tmp_path: Path):
    p = platform(tmp_path, store=None)
    assert "LogStoreDown" not in render_platform(p)[f"{p.paths.deploy}/prometheus/rules/services.yml"]


def test_grafana_gets_the_victorialogs_datasource_and_its_plugin(tmp_path: Path):
    path = tmp_path / "platform.yaml"
    path.write_text("version: 1\nproject: logs3\nservices:\n  prometheus: {}\n  grafana: {}\n  victorialogs: {}\n")
    p = load([path], env={}).platform
    rel = f"{p.paths.deploy}/grafana/provisioning/datasources/prometheus.yml"
    sources = {s["uid"]: s for s in yaml.safe_load(render_platform(p)[rel])["datasources"]}
    assert sources["victorialogs"]["type"] == "victoriametrics-logs-datasource"
    assert sources["victorialogs"]["url"] == "http://victorialogs:9428"
    assert container_specs(p)["grafana"].environment["GF_INSTALL_PLUGINS"] == "victoriametrics-logs-datasource"
    path.write_text("version: 1\nproject: logs3\nservices:\n  prometheus: {}\n  grafana: {}\n")
    p = load([path], env={}).platform
    assert "victorialogs" not in render_platform(p)[rel]
    assert "GF_INSTALL_PLUGINS" not in container_specs(p)["grafana"].environment
