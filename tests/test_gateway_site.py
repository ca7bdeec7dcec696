"""The gateway's nginx.conf and the cluster's files rendered for where they run: the upstream
looked up per request through that place's DNS (Docker's embedded one, the cluster's), in the
cluster the application's Service qualified per overlay, and gateway_exporter per request line;
nginx -t with no name resolvable;
gixy finds nothing medium or high; the monitoring selector labels, PVCs, the Secret to create."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.kubernetes import cluster_configs, prepare_cluster

from .conftest import EXAMPLES, need, run_cli
from .kubernetes_support import base_objects, by_kind, full_data, platform_of
from .render_support import deploy, nginx_test

NGINX = "gateway/nginx.conf"


def cluster_conf(tmp_path: Path, namespace: str | None = None, **kubernetes) -> str:
    data = full_data(**kubernetes)
    platform = platform_of(tmp_path, data)
    return cluster_configs(platform, namespace)[deploy(platform, NGINX)]


def test_the_cluster_gateway_proxies_to_the_applications_service_through_the_clusters_dns(tmp_path):
    conf = cluster_conf(tmp_path, "shop-production", upstream="http://orders:9000/v1")
    assert "host.docker.internal" not in conf
    assert "resolver kube-dns.kube-system.svc.cluster.local valid=10s" in conf
    assert 'set $mindscape_upstream_host "orders.shop-production.svc.cluster.local";' in conf
    assert "proxy_pass http://$mindscape_upstream_host:9000$mindscape_upstream_prefix$request_uri;" in conf
    assert 'set $mindscape_upstream_prefix "/v1";' in conf
    # the request lines: to the gateway's own relay, which asks the cluster's DNS per line
    assert "access_log syslog:server=127.0.0.1:5140," in conf
    assert 'default "gateway-exporter.shop-production.svc.cluster.local:5140";' in conf
    # every lookup asks the cluster's DNS: http's, the identity service's locations', the relay's
    resolvers = {line.strip() for line in conf.splitlines() if line.strip().startswith("resolver ")}
    assert resolvers and all(r.startswith("resolver kube-dns.kube-system.svc.cluster.local ") for r in resolvers)
    assert "resolver kube-dns" in conf.split("\nstream {", 1)[1]


def test_each_overlay_patches_the_gateway_config_for_its_namespace(tmp_path):
    platform = platform_of(tmp_path, full_data())
    files = render_platform(platform)
    for environment in ("development", "staging", "production"):
        patch = files[f"{platform.paths.deploy}/kubernetes/overlays/{environment}/site.yaml"]
        objects = {o["kind"]: o for o in yaml.safe_load_all(patch)}
        assert f"app.fullshop-{environment}.svc.cluster.local" in objects["ConfigMap"]["data"]["nginx.conf"]
        assert "mindscape.io/config" in objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    gateway = by_kind(base_objects(platform), "ConfigMap")["gateway-etc-nginx-nginx-conf"]["data"]["nginx.conf"]
    assert "host.docker.internal" not in gateway and 'set $mindscape_upstream_host "app";' in gateway


def test_the_docker_gateway_asks_dockers_dns_for_a_name_and_reads_the_hosts_file_name_per_request(tmp_path):
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"]["gateway"]["upstream"] = "http://api:8000"
    conf = render_platform(platform_of(tmp_path / "dns", data))[deploy(platform_of(tmp_path / "dns", data), NGINX)]
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in conf and "upstream mindscape_app" not in conf
    data["services"]["gateway"]["upstream"] = "http://host.docker.internal:8000"
    platform = platform_of(tmp_path / "host", data)
    conf = render_platform(platform)[deploy(platform, NGINX)]
    assert "server host.docker.internal" not in conf  # read per request: tests/test_gateway_hosts_file.py
    assert "proxy_pass http://$mindscape_upstream_addr:8000$request_uri;" in conf


def test_monitoring_selector_labels_and_data_on_pvcs(tmp_path):
    labels = {"release": "kube-prometheus-stack"}
    platform = platform_of(tmp_path, full_data(prometheus_operator=True, monitoring_labels=labels))
    objects = base_objects(platform)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for obj in by_kind(objects, kind).values():
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    default = base_objects(platform_of(tmp_path / "default", full_data()))
    sets = by_kind(default, "StatefulSet")
    for name in ("prometheus", "alertmanager", "grafana"):
        assert [c["metadata"]["name"] for c in sets[name]["spec"]["volumeClaimTemplates"]] == ["data"], name
        volumes = sets[name]["spec"]["template"]["spec"]["volumes"]
        assert not any(v["name"] == "data" for v in volumes), name


def test_by_default_the_pods_read_an_existing_secret_and_render_says_what_to_create(tmp_path):
    platform = platform_of(tmp_path, full_data())
    assert platform.kubernetes.secrets.source == "existing"
    kustomization = render_platform(platform)[f"{platform.paths.deploy}/kubernetes/base/kustomization.yaml"]
    assert "secretGenerator" not in kustomization
    warnings = prepare_cluster(tmp_path, platform, {})
    assert any(
        "create it in each overlay's namespace with the keys" in w and "POSTGRES_PASSWORD" in w for w in warnings
    )


# -- the real tools -------------------------------------------------------------------------


@pytest.mark.tools
def test_nginx_t_passes_where_no_name_resolves(tmp_path):
    """The cluster's config (its DNS server given as an address) and a Docker config with a
    DNS-named upstream and gateway_exporter: `nginx -t` here, where no name resolves (neither
    the Services nor the containers exist)."""
    conf = tmp_path / "nginx.conf"
    platform = platform_of(tmp_path / "k", full_data(dns={"resolver": "10.96.0.10"}))
    files = cluster_configs(platform, "shop-production")
    (tmp_path / "auth.js").write_text(files[deploy(platform, "gateway/auth.js")])  # its protected routes' check
    text = files[deploy(platform, NGINX)].replace("/etc/nginx/mindscape/auth.js", f"{tmp_path}/auth.js")
    conf.write_text(text)
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load((EXAMPLES / "local" / "platform.yaml").read_text())
    data["services"]["gateway"]["upstream"] = "http://app:8000"
    platform = platform_of(tmp_path / "docker", data)
    conf.write_text(render_platform(platform)[deploy(platform, NGINX)])
    assert 'default "gateway_exporter:5140";' in conf.read_text()
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    # a name nginx would look up at start fails here: the check is real
    conf.write_text(conf.read_text().replace("syslog:server=127.0.0.1:", "syslog:server=gateway_exporter:"))
    result = nginx_test(conf, tmp_path)
    assert result.returncode != 0 and "gateway_exporter" in result.stderr, result.stderr


def gixy() -> str:
    path = shutil.which("gixy")
    if path is None:
        need("gixy is not installed (scripts/setup-test-env installs gixy-ng)")
    return path


@pytest.mark.tools
@pytest.mark.parametrize("example", ["starter", "full", "local", "kubernetes"])  # minimal has no gateway
def test_gixy_finds_nothing_medium_or_high(example, tmp_path):
    if example == "starter":
        assert run_cli("init", str(tmp_path / "s"), "--name", "shop", cwd=tmp_path).returncode == 0
        platform_path = tmp_path / "s" / "platform.yaml"
    elif example == "kubernetes":
        platform_path = None
    else:
        platform_path = EXAMPLES / example / "platform.yaml"
    if platform_path is None:
        text = cluster_conf(tmp_path / "k", "shop-production")
    else:
        from mindscape_ops.config.loader import load

        platform = load([platform_path], env={}).platform
        text = render_platform(platform)[deploy(platform, NGINX)]
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run([gixy(), "-ll", str(conf)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
