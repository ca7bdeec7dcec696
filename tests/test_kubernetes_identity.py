"""The identity service and the gateway's session check on Kubernetes, wired as on Docker: Kratos'
Deployment runs `up`'s before_start as init containers (its database and role, made in Postgres'
image by the platform's user; then `kratos migrate sql`), its rendered config from ConfigMaps, its
DSN, cookie secret and signing keys from the platform's Secret; the gateway mounts its njs script
and the public JWKS, asks the identity Service on its public port and extends sessions on its
admin port, which the NetworkPolicies allow and nothing else. kustomize and the strict schemas:
test_kubernetes_tools.py (the `full` platform has these routes)."""

from __future__ import annotations

import pytest

from mindscape_ops.render.kubernetes import cluster_warnings, prepare_cluster

from .kubernetes_support import base_objects, by_kind, full_data, platform_of


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return platform_of(tmp_path_factory.mktemp("identity"), full_data())


def pod(objects: list[dict], name: str) -> dict:
    return by_kind(objects, "Deployment")[name]["spec"]["template"]["spec"]


def secret_items(spec: dict, container: dict) -> dict[str, str]:
    """mount path -> Secret key, of a container's mounts from the Secret."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    found = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret:
            for item in secret["items"]:
                found[mount["mountPath"]] = item["key"]
    return found


def config_items(spec: dict, container: dict) -> dict[str, str]:
    volumes = {v["name"]: v for v in spec["volumes"]}
    return {
        m["mountPath"]: volumes[m["name"]]["configMap"]["name"]
        for m in container.get("volumeMounts", [])
        if "configMap" in volumes[m["name"]]
    }


def test_kratos_makes_its_database_and_migrates_before_it_serves(full):
    spec = pod(base_objects(full), "identity")
    database, migrate = spec["initContainers"]
    assert database["name"] == "database" and database["image"] == full.services.postgres.image
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in database["env"]}
    assert env["PGHOST"] == "postgres" and env["PGUSER"] == full.services.postgres.user
    assert env["PGPASSWORD"] == {"secretKeyRef": {"name": "fullshop-secrets", "key": "POSTGRES_PASSWORD"}}
    assert env["IDENTITY_DB_PASSWORD"] == {"secretKeyRef": {"name": "fullshop-secrets", "key": "IDENTITY_DB_PASSWORD"}}
    assert env["IDENTITY_DATABASE"] == full.services.identity.database
    script = database["args"][2]
    # Kubernetes turns $$ into $: the shell gets its variables, not Kubernetes' $(VAR)
    assert database["args"][:2] == ["sh", "-c"] and "$$IDENTITY_DB_PASSWORD" in script and "\\gexec" in script
    assert "CREATE ROLE %I LOGIN" in script and "CREATE DATABASE %I OWNER %I" in script
    main = spec["containers"][0]
    assert migrate["image"] == main["image"] and migrate["args"] == [
        "migrate",
        "sql",
        "-e",
        "--yes",
        "-c",
        "/etc/kratos/private/secrets.yml",
    ]
    assert migrate["volumeMounts"] == main["volumeMounts"]  # its DSN is in the same Secret file
    for init in (database, migrate):
        assert init["securityContext"] == main["securityContext"] and init["resources"] == main["resources"]


def test_kratos_reads_its_config_from_configmaps_and_its_secrets_from_the_secret(full):
    spec = pod(base_objects(full), "identity")
    main = spec["containers"][0]
    assert main["args"][0] == "serve"
    assert secret_items(spec, main) == {
        "/etc/kratos/private/secrets.yml": "identity-secrets.yml",
        "/etc/kratos/private/jwks.json": "identity-jwks.json",
    }
    configs = config_items(spec, main)
    assert {"/etc/kratos/kratos.yml", "/etc/kratos/identity.schema.json", "/etc/kratos/claims.jsonnet"} <= set(configs)
    ports = {p["containerPort"] for p in main["ports"]}
    assert ports == {4433, 4434}


def test_the_gateway_checks_sessions_with_its_script_and_publishes_the_jwks(full):
    objects = base_objects(full)
    spec = pod(objects, "gateway")
    main = spec["containers"][0]
    assert secret_items(spec, main) == {"/etc/nginx/mindscape/jwks.json": "identity-jwks.public.json"}
    configs = config_items(spec, main)
    script = by_kind(objects, "ConfigMap")[configs["/etc/nginx/mindscape/auth.js"]]["data"]["auth.js"]
    assert "async function guard(r)" in script and "var IDLE_MS = 1200000;" in script  # idle_timeout 20m
    conf = next(c["data"]["nginx.conf"] for c in by_kind(objects, "ConfigMap").values() if "nginx.conf" in c["data"])
    assert "js_import mindscape_auth from /etc/nginx/mindscape/auth.js;" in conf
    assert "/sessions/whoami?tokenize_as=mindscape" in conf and "/admin/sessions/$mindscape_sid/extend" in conf


def _peers(rules: list[dict], key: str) -> set[tuple[str, int]]:
    found = set()
    for rule in rules:
        for peer in rule.get(key, []):
            name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            for port in rule.get("ports", []):
                if name:
                    found.add((name, port["port"]))
    return found


def test_the_network_policies_let_the_gateway_ask_and_extend_and_kratos_reach_postgres(full):
    policies = by_kind(base_objects(full), "NetworkPolicy")
    gateway, identity = policies["gateway"]["spec"], policies["identity"]["spec"]
    assert {("identity", 4433), ("identity", 4434)} <= _peers(gateway["egress"], "to")
    assert {("gateway", 4433), ("gateway", 4434)} <= _peers(identity["ingress"], "from")
    assert ("postgres", 5432) in _peers(identity["egress"], "to")
    # no one else reaches its admin API (Prometheus scrapes its metrics there: the same port)
    admins = {name for name, port in _peers(identity["ingress"], "from") if port == 4434}
    assert admins <= {"gateway", "prometheus"}


def test_kratos_courier_reaches_the_smtp_relay_or_else_the_log_store(full, tmp_path):
    """examples/full sends through monitoring.smtp: its port, at any address (the relay is
    outside the platform); without a relay, the e-mails go to the log store's push API."""
    identity = by_kind(base_objects(full), "NetworkPolicy")["identity"]["spec"]
    anywhere = {port["port"] for rule in identity["egress"] if "to" not in rule for port in rule["ports"]}
    assert anywhere == {full.monitoring.smtp.port}
    data = full_data()
    data["monitoring"].pop("smtp")
    data["monitoring"]["receivers"] = [r for r in data["monitoring"]["receivers"] if r["kind"] != "email"]
    data["services"]["victorialogs"] = {}
    local = platform_of(tmp_path, data)
    identity = by_kind(base_objects(local), "NetworkPolicy")["identity"]["spec"]
    assert ("victorialogs", 9428) in _peers(identity["egress"], "to")
    assert not [rule for rule in identity["egress"] if "to" not in rule]


def test_a_relay_on_the_docker_host_is_warned_about_on_a_cluster(tmp_path):
    """The relay on host.docker.internal (a test relay on this machine) resolves nowhere in a
    cluster: said once, by the setting that names it, whether the identity service's courier or
    Alertmanager's e-mail receivers use it."""
    data = full_data()
    data["monitoring"]["smtp"]["host"] = "host.docker.internal"
    warnings = [w for w in cluster_warnings(platform_of(tmp_path, data)) if "monitoring.smtp.host" in w]
    assert len(warnings) == 1 and "host.docker.internal" in warnings[0], warnings
    data["services"].pop("identity")  # Alertmanager's e-mail receivers use it too
    data["services"]["gateway"]["routes"] = []
    warnings = [w for w in cluster_warnings(platform_of(tmp_path, data)) if "monitoring.smtp.host" in w]
    assert len(warnings) == 1, warnings
    assert not [w for w in cluster_warnings(platform_of(tmp_path, full_data())) if "monitoring.smtp" in w]


def test_an_existing_secret_is_described_with_the_files_it_takes(tmp_path):
    platform = platform_of(tmp_path, full_data(secrets={"source": "existing"}))
    (message,) = [w for w in prepare_cluster(tmp_path, platform, {}) if "the pods read Secret" in w]
    assert "--from-file=identity-secrets.yml=.mindscape/identity/secrets.yml" in message
    assert "--from-file=identity-jwks.json=.mindscape/identity/jwks.json" in message
    assert "IDENTITY_DB_PASSWORD" in message
