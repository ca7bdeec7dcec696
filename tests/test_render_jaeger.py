"""The trace store's files and container, without an engine: Jaeger's config from platform.yaml
(memory or badger, their bounds, every listener), the applications' deploy/otel/app.env, the
published OTLP ports (in the container spec, the compose export, and refused when they clash),
Grafana's Jaeger datasource, and the pure halves of the traces.ingesting gate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services import jaeger
from mindscape_ops.services.jaeger import otlp_endpoint
from mindscape_ops.services.spec import container_specs


def platform(tmp_path: Path, jaeger: dict | None = None, **others: dict):
    services = {"jaeger": jaeger or {}, **others}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "project": "tr", "services": services}))
    return load([path], env={}).platform


def rendered(tmp_path: Path, jaeger: dict | None = None, **others: dict) -> dict[str, str]:
    return render_platform(platform(tmp_path, jaeger, **others))


def env_file(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_memory_storage_is_bounded_and_every_listener_is_set(tmp_path):
    config = yaml.safe_load(rendered(tmp_path, {"max_traces": 2500})["deploy/jaeger/config.yaml"])
    assert config["extensions"]["jaeger_storage"]["backends"]["traces"] == {"memory": {"max_traces": 2500}}
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == "traces"
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == "traces"
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"
    protocols = config["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")
    prometheus = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert (prometheus["host"], prometheus["port"]) == ("0.0.0.0", 8888)
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["jaeger_storage_exporter"]
    assert set(config["service"]["extensions"]) == set(config["extensions"])


def test_badger_storage_keeps_spans_on_the_volume_for_the_retention(tmp_path):
    p = platform(tmp_path, {"storage": "badger", "retention": "36h"})
    config = yaml.safe_load(render_platform(p)["deploy/jaeger/config.yaml"])
    badger = config["extensions"]["jaeger_storage"]["backends"]["traces"]["badger"]
    assert badger["ttl"] == {"spans": "129600s"} and badger["ephemeral"] is False
    spec = container_specs(p)["jaeger"]
    assert spec.volume == "tr-jaeger-data"
    assert all(path.startswith(spec.volume_target + "/") for path in badger["directories"].values())
    assert container_specs(platform(tmp_path))["jaeger"].volume is None  # memory: nothing to keep


def test_app_env_points_the_sdk_at_the_published_receiver(tmp_path):
    files = rendered(tmp_path, {"service_name": "orders", "sample_ratio": 0.25, "otlp_http_port": 14318})
    env = env_file(files["deploy/otel/app.env"])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:14318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "orders"
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == ("parentbased_traceidratio", "0.25")
    assert env["OTEL_PROPAGATORS"] == "tracecontext,baggage"


def test_app_env_without_published_http_uses_grpc_then_the_network(tmp_path):
    env = env_file(rendered(tmp_path / "a", {"otlp_http_port": None, "bind": "0.0.0.0"})["deploy/otel/app.env"])
    assert (env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_EXPORTER_OTLP_PROTOCOL"]) == ("http://127.0.0.1:4317", "grpc")
    assert env["OTEL_SERVICE_NAME"] == "tr"  # the project's name by default
    none = rendered(tmp_path / "b", {"otlp_http_port": None, "otlp_grpc_port": None})["deploy/otel/app.env"]
    assert env_file(none)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


def test_otlp_ports_are_published_beside_the_query_port(tmp_path):
    p = platform(tmp_path, {"otlp_grpc_port": 24317, "otlp_http_port": None, "bind": "127.0.0.2"})
    spec = container_specs(p)["jaeger"]
    assert (spec.container_port, spec.host_port, spec.extra_ports) == (16686, 16686, {4317: 24317})
    assert otlp_endpoint(p, "grpc") == "http://127.0.0.2:24317" and otlp_endpoint(p, "http") is None
    compose = yaml.safe_load(render_platform(p)["deploy/compose.yaml"])
    assert compose["services"]["jaeger"]["ports"] == ["127.0.0.2:16686:16686", "127.0.0.2:24317:4317"]


@pytest.mark.parametrize(
    ("jaeger", "others", "where"),
    [
        ({"otlp_http_port": 9090}, {"prometheus": {}}, "services.jaeger.otlp_http_port"),
        ({"otlp_grpc_port": 4318}, {}, "services.jaeger.otlp_http_port"),
        ({"otlp_grpc_port": 16686}, {}, "services.jaeger.otlp_grpc_port"),
    ],
)
def test_an_otlp_port_taken_by_another_port_is_refused(tmp_path, jaeger, others, where):
    with pytest.raises(ConfigError) as raised:
        platform(tmp_path, jaeger, **others)
    assert any(where in str(problem) and "already used" in str(problem) for problem in raised.value.problems)


def test_grafana_gets_the_jaeger_datasource(tmp_path):
    files = rendered(tmp_path, {}, prometheus={}, grafana={})
    path = next(p for p in files if p.startswith("deploy/grafana/provisioning/datasources/"))
    sources = {d["uid"]: d for d in yaml.safe_load(files[path])["datasources"]}
    assert sources["jaeger"]["type"] == "jaeger" and sources["jaeger"]["url"] == "http://jaeger:16686"


def test_logs_and_traces_link_by_trace_id_in_grafana(tmp_path):
    files = rendered(tmp_path, {}, prometheus={}, grafana={}, victorialogs={})
    path = next(p for p in files if p.startswith("deploy/grafana/provisioning/datasources/"))
    sources = {d["uid"]: d for d in yaml.safe_load(files[path])["datasources"]}
    to_logs = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "victorialogs" and to_logs["customQuery"] is True
    # `$$` is Grafana provisioning's literal `$`: Grafana itself reads ${__span.traceId}
    assert to_logs["query"] == 'event.line.trace_id:="$${__span.traceId}"'
    (field,) = sources["victorialogs"]["jsonData"]["derivedFields"]
    assert (field["datasourceUid"], field["matcherRegex"], field["url"]) == (
        "jaeger",
        "event.line.trace_id",
        "$${__value.raw}",
    )


def test_without_jaeger_nothing_of_it_is_rendered(tmp_path):
    files = rendered(tmp_path, {"enabled": False}, prometheus={}, grafana={}, gateway={})
    assert not [p for p in files if "jaeger" in p or "otel" in p or p.endswith("tracing.md")]
    assert not [p for p, text in files.items() if "jaeger" in text.lower() and not p.endswith("compose.yaml")]


def test_probe_span_is_an_otlp_json_export_request():
    body = jaeger.probe_span("ab" * 16, "cd" * 8, 2_000_000_000)
    resource = body["resourceSpans"][0]
    attributes = {a["key"]: a["value"]["stringValue"] for a in resource["resource"]["attributes"]}
    span = resource["scopeSpans"][0]["spans"][0]
    assert attributes == {"service.name": jaeger.CHECK_SERVICE}
    assert (span["traceId"], span["spanId"]) == ("ab" * 16, "cd" * 8)
    assert int(span["startTimeUnixNano"]) < int(span["endTimeUnixNano"]) == 2_000_000_000


def test_spans_of_reads_the_query_api_answer():
    answer = {"data": [{"traceID": "00ab", "spans": [{"spanID": "1"}]}, {"traceID": "ff", "spans": [{"spanID": "2"}]}]}
    assert jaeger.spans_of(answer, "ab") == [{"spanID": "1"}]
    assert jaeger.spans_of({"data": None}, "ab") == [] and jaeger.spans_of(None, "ab") == []


def test_the_gate_skips_when_no_otlp_receiver_is_published(tmp_path):
    class Context:
        platform = platform(tmp_path, {"otlp_http_port": None})

    with pytest.raises(jaeger.Skipped, match="otlp_http_port is null"):
        jaeger.ingesting(Context())
