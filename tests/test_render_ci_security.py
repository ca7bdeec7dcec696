"""CI workflows, the gateway's nginx.conf, policy.json, redis.conf, pgbouncer.ini, the compose
export and the runbooks, rendered from platform.yaml. Each file is checked by what reads it for
real (check-jsonschema, nginx, docker-compose, yaml/json/ini parsers) and parsed back to prove
that values from platform.yaml arrive intact and in place, even hostile ones."""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config import load
from mindscape_ops.config.models import Platform
from mindscape_ops.containers import container_specs
from mindscape_ops.errors import ConfigError
from mindscape_ops.render import artifacts
from mindscape_ops.render.artifacts import render_platform

from .conftest import EXAMPLES, need

FAMILY = ("ci/", "gateway/", "security/", "redis/", "pgbouncer/", "compose/", "runbooks/")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
HOSTILE_CSP = """default-src 'self' "x"; script-src 'nonce-$abc' {{ y }} # z \\ ${dollar} end;"""
HOSTILE_PERMISSIONS = 'camera=(), geolocation=("https://a.example" self); $x #y {{ z }}'
HOSTILE_DIR = """src/it's "x" #1; $HOME {{ y }} & *a: [b]"""
HOSTILE_SETTING = "$user, public; #x {{ y }} ${z}"
SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
)


@pytest.fixture(autouse=True)
def this_family_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render these artifacts alone: other families have their own tests, and a broken template
    there must not fail (or hide) these."""
    mine = tuple(a for a in artifacts.ARTIFACTS if a.template.startswith(FAMILY))
    monkeypatch.setattr(artifacts, "ARTIFACTS", mine)


# -- platforms ----------------------------------------------------------------------------


def platform_from(tmp_path: Path, data: dict) -> Platform:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load([path], env={}).platform


def full_data() -> dict:
    return yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())


def everything_on(tmp_path: Path) -> Platform:
    """examples/full with the rest switched on: a DNS-named https upstream (resolved per request),
    a published-everywhere bind, @daily backups, a fractional duration."""
    data = full_data()
    data["services"]["gateway"].update(upstream="https://api.internal:8443/v1/", server_name="*.example.com")
    data["services"]["grafana"]["bind"] = "0.0.0.0"
    data["services"]["postgres"]["health"]["start_period"] = "1s500ms"
    data["security"]["limits"]["client_timeout"] = "1m30s"
    data["security"]["rate_limit"].update(status=503, burst=0)
    data["backups"]["schedule"] = "@daily"
    data["database"]["migrate_on_up"] = False
    return platform_from(tmp_path, data)


def switched_off(tmp_path: Path) -> Platform:
    """The gateway with every optional security feature off, and CI/backups trimmed."""
    data = full_data()
    data["services"]["gateway"]["upstream"] = "http://10.0.0.5:9000"
    data["security"].update(
        headers={"hsts": {"enabled": False}},
        cors={"allowed_origins": []},
        rate_limit={"enabled": False},
        audit_log={"enabled": False},
    )
    data["ci"].update(lint=False, security_scan=False)
    data["backups"] = {"enabled": False}
    return platform_from(tmp_path, data)


def literal(text: str) -> str:
    """platform.yaml interpolates ${VAR} as compose does; `$$` is a literal `$`."""
    return text.replace("$", "$$")


def hostile(tmp_path: Path) -> Platform:
    """Free-text values that would break a file if written unescaped."""
    data = full_data()
    data["security"]["headers"].update(
        content_security_policy=literal(HOSTILE_CSP), permissions_policy=literal(HOSTILE_PERMISSIONS)
    )
    data["services"]["postgres"]["settings"]["search_path"] = literal(HOSTILE_SETTING)
    return platform_from(tmp_path, data)


def test_hostile_paths_are_refused_before_any_file_is_written(tmp_path: Path) -> None:
    # Paths reach workflow files and shell steps: the model takes only plain path characters.
    data = full_data()
    data["ci"].update(source_dir=literal(HOSTILE_DIR), tests_dir=literal(HOSTILE_DIR + "/t"))
    data["database"].update(migrations_dir=literal(HOSTILE_DIR + "/m"))
    data["backups"]["local"]["dir"] = literal(HOSTILE_DIR + "/b")
    with pytest.raises(ConfigError) as caught:
        platform_from(tmp_path, data)
    assert len(caught.value.problems) == 4
    assert all("must be a relative path inside the project" in p for p in caught.value.problems)


BUILDERS = {
    "minimal": lambda tmp: load([EXAMPLES / "minimal" / "platform.yaml"], env={}).platform,
    "full": lambda tmp: load([EXAMPLES / "full" / "platform.yaml"], env={}).platform,
    "local": lambda tmp: load([EXAMPLES / "local" / "platform.yaml"], env={}).platform,
    "everything": everything_on,
    "switched_off": switched_off,
    "hostile": hostile,
}


@pytest.fixture(params=list(BUILDERS))
def rendered(request, tmp_path: Path) -> tuple[Platform, Path, dict[str, str]]:
    platform = BUILDERS[request.param](tmp_path / "source")
    files = render_platform(platform)
    out = tmp_path / "project"
    for rel, text in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return platform, out, files


def deploy(platform: Platform, rel: str) -> str:
    return f"{platform.paths.deploy}/{rel}"


# -- tools --------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        need(f"{name} is not installed")
    return path


def run(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def nginx_test(conf: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`nginx -t` as the gateway container sees the file. An upstream on host.docker.internal is
    resolved when nginx starts, from /etc/hosts, where Docker writes it (extra_hosts): here it
    gets the same entry, in a private mount namespace, so the host's /etc/hosts is untouched."""
    prefix = tmp_path / "nginx-prefix"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    command = [tool("nginx"), "-t", "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf)]
    if "server host.docker.internal:" not in conf.read_text():
        return run(*command)
    if os.geteuid() != 0:
        need("nginx -t of an upstream on host.docker.internal needs root (a private /etc/hosts)")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n192.0.2.10 host.docker.internal\n")
    return run(
        tool("unshare"), "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *command
    )


def _unescape(match: re.Match) -> str:
    return "$" if match.group(1) is None else match.group(1)


def nginx_headers(conf_text: str) -> dict[str, str]:
    """`add_header NAME VALUE always;` lines, VALUE unescaped the way nginx reads it."""
    found = {}
    pattern = r'^\s*add_header\s+(\S+)\s+("(?:[^"\\]|\\.)*"|\S+)\s+always;'
    for name, value in re.findall(pattern, conf_text, re.M):
        if value.startswith('"'):
            value = re.sub(r"\\(.)|\$\{dollar\}", _unescape, value[1:-1])
        found[name] = value
    return found


def go_duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds == int(seconds) else f"{seconds * 1000:.0f}ms"


def workflow_triggers(doc: dict) -> dict:
    return doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true


# -- CI workflows -------------------------------------------------------------------------


@pytest.mark.tools
def test_workflows_pass_the_github_schema(rendered) -> None:
    platform, out, files = rendered
    workflows = [rel for rel in files if rel.startswith(platform.paths.workflows + "/")]
    assert len(workflows) == (2 if platform.backups.enabled else 1)
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *(str(out / rel) for rel in workflows)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_workflow_jobs_and_gates(rendered) -> None:
    platform, _, files = rendered
    ci = platform.ci
    doc = yaml.safe_load(files[f"{platform.paths.workflows}/ci.yml"])
    triggers = workflow_triggers(doc)
    assert triggers["push"]["branches"] == ci.branches == triggers["pull_request"]["branches"]
    assert doc["permissions"] == {"contents": "read"}
    assert doc["concurrency"]["cancel-in-progress"] is True
    assert doc["env"]["SOURCE_DIR"] == ci.source_dir and doc["env"]["TESTS_DIR"] == ci.tests_dir
    assert doc["env"]["PYTHON_VERSION"] == ci.python_version

    jobs = doc["jobs"]
    expected = {"test", "generated-files", "platform", "build"}
    expected |= {"lint"} if ci.lint else set()
    expected |= {"security"} if ci.security_scan else set()
    assert set(jobs) == expected

    def commands(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    assert f"--cov-fail-under={ci.coverage_threshold}" in commands("test")
    assert '--cov="$SOURCE_DIR"' in commands("test") and 'pytest "$TESTS_DIR"' in commands("test")
    if ci.lint:
        assert "ruff check" in commands("lint")
    if ci.security_scan:
        assert "pip-audit" in commands("security") and 'bandit -r "$SOURCE_DIR"' in commands("security")
    assert "mindscape render --check" in commands("generated-files")
    assert "mindscape up" in commands("platform")
    assert "mindscape check --junit reports/mindscape-check.xml" in commands("platform")
    uploads = [
        step for step in jobs["platform"]["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert uploads and uploads[0]["with"]["path"] == "reports/mindscape-check.xml"
    assert "python -m build" in commands("build")
    assert ("mindscape migrate up" in commands("platform")) == (
        "postgres" in platform.services.enabled() and not platform.database.migrate_on_up
    )

    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_backup_workflow_schedule_and_credentials(rendered) -> None:
    platform, _, files = rendered
    path = f"{platform.paths.workflows}/backup.yml"
    if not platform.backups.enabled:
        assert path not in files
        return
    doc = yaml.safe_load(files[path])
    triggers = workflow_triggers(doc)
    cron = {"@daily": "0 0 * * *"}.get(platform.backups.schedule, platform.backups.schedule)
    assert triggers["schedule"] == [{"cron": cron}] and "workflow_dispatch" in triggers
    job = doc["jobs"]["backup"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-2:] == ["mindscape backup create", "mindscape backup prune"]
    s3_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    if platform.backups.s3:
        for key in s3_keys:
            assert job["env"][key] == f"${{{{ secrets.{key} }}}}"
    else:
        assert not s3_keys & set(job["env"])


# -- gateway ------------------------------------------------------------------------------


@pytest.mark.tools
def test_gateway_config_passes_nginx_t(rendered, tmp_path: Path) -> None:
    platform, out, files = rendered
    rel = deploy(platform, "gateway/nginx.conf")
    if "gateway" not in platform.services.enabled():
        assert rel not in files
        return
    result = nginx_test(out / rel, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.tools
def test_gateway_with_a_dns_upstream_needs_no_resolving_at_start(tmp_path: Path) -> None:
    """A name that does not resolve yet (another container, a DNS name) is looked up per request."""
    platform = everything_on(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_platform(platform)[deploy(platform, "gateway/nginx.conf")])
    assert "resolver 127.0.0.11" in conf.read_text()
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr


def test_gateway_config_content(rendered) -> None:
    platform, _, files = rendered
    rel = deploy(platform, "gateway/nginx.conf")
    if rel not in files:
        return
    text = files[rel]
    sec = platform.security
    headers = nginx_headers(text)
    for name in SECURITY_HEADERS:
        if name == "Strict-Transport-Security" and not sec.headers.hsts.enabled:
            assert name not in headers
            continue
        assert name in headers, name
    assert headers["Content-Security-Policy"] == sec.headers.content_security_policy
    assert headers["Permissions-Policy"] == sec.headers.permissions_policy
    assert headers["X-Frame-Options"] == sec.headers.frame_options
    assert headers["Referrer-Policy"] == sec.headers.referrer_policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    if sec.headers.hsts.enabled:
        max_age = int(sec.headers.hsts.max_age.seconds)
        assert headers["Strict-Transport-Security"].startswith(f"max-age={max_age}")

    for line in (
        "server_tokens off;",
        "worker_processes auto;",
        "listen 8080 default_server;",
        "error_log /dev/stderr",
        "location = /healthz",
        f"client_max_body_size {sec.limits.max_body_size.nginx};",
        "proxy_set_header X-Request-ID",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert line in text, line

    cors_map = re.search(r"map \$http_origin \$cors_origin \{(.*?)\n    \}", text, re.S)
    if sec.cors.allowed_origins:
        entries = re.findall(r'^\s*"([^"]+)" "([^"]+)";$', cors_map.group(1), re.M)
        assert entries == [(origin, origin) for origin in sec.cors.allowed_origins]
        assert 'default "";' in cors_map.group(1)
        assert headers["Vary"] == "Origin"
    else:
        assert cors_map is None and "Access-Control-Allow-Origin" not in headers

    rate = sec.rate_limit
    if rate.enabled:
        assert f"rate={rate.requests_per_second}r/s;" in text
        assert (f"burst={rate.burst} nodelay;" if rate.burst else "per_client nodelay;") in text
        assert f"limit_req_status {rate.status};" in text
    else:
        assert "limit_req" not in text
    assert ("log_format mindscape_audit escape=json" in text) == sec.audit_log.enabled
    assert ("\n    access_log off;" in text) != sec.audit_log.enabled


# -- policy.json, redis.conf, pgbouncer.ini -----------------------------------------------


def test_security_policy(rendered) -> None:
    platform, _, files = rendered
    text = files[deploy(platform, "security/policy.json")]
    policy = json.loads(text)
    auth, sec = platform.security.auth, platform.security
    assert policy["jwt"]["issuer"] == auth.jwt.issuer and policy["jwt"]["audience"] == auth.jwt.audience
    assert policy["jwt"]["algorithms"] == list(auth.jwt.algorithms)
    assert policy["jwt"]["access_token_ttl"] == auth.jwt.access_token_ttl
    assert policy["jwt"]["access_token_ttl_seconds"] == auth.jwt.access_token_ttl.seconds
    assert policy["jwt"]["refresh_token_ttl_seconds"] == auth.jwt.refresh_token_ttl.seconds
    roles = auth.roles.items()
    assert policy["roles"] == {
        name: {"permissions": list(role.permissions), "mfa_required": role.mfa_required} for name, role in roles
    }
    assert policy["mfa"]["required_for_roles"] == [name for name, role in roles if role.mfa_required]
    assert policy["mfa"]["methods"] == list(auth.mfa.methods)
    assert policy["sessions"]["idle_timeout_seconds"] == auth.sessions.idle_timeout.seconds
    assert policy["sessions"]["absolute_timeout_seconds"] == auth.sessions.absolute_timeout.seconds
    assert policy["cors"]["allowed_origins"] == list(sec.cors.allowed_origins)
    assert policy["rate_limit"] == sec.rate_limit.model_dump()
    assert policy["limits"]["max_body_size_bytes"] == sec.limits.max_body_size.bytes
    assert text.startswith('{\n  "version": 1,\n') and text.endswith("}\n")


def test_redis_conf(rendered) -> None:
    platform, _, files = rendered
    rel = deploy(platform, "redis/redis.conf")
    if "redis" not in platform.services.enabled():
        assert rel not in files
        return
    redis = platform.services.redis
    lines = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1]
        for line in files[rel].splitlines()
        if line and not line.startswith("#")
    }
    assert lines["maxmemory"] == str(redis.maxmemory.bytes)
    assert lines["maxmemory-policy"] == redis.maxmemory_policy
    assert lines["appendonly"] == ("yes" if redis.appendonly else "no")
    assert (lines["dir"], lines["bind"], lines["protected-mode"]) == ("/data", "0.0.0.0", "no")
    assert "requirepass" not in lines  # the password comes on the command line, from secrets.env


def test_pgbouncer_ini(rendered) -> None:
    platform, _, files = rendered
    rel = deploy(platform, "pgbouncer/pgbouncer.ini")
    if "pgbouncer" not in platform.services.enabled():
        assert rel not in files
        return
    ini = configparser.ConfigParser()
    ini.read_string(files[rel])
    pool, pg = platform.services.pgbouncer, platform.services.postgres
    assert dict(ini["databases"]) == {pg.database.lower(): f"host=postgres port=5432 dbname={pg.database}"}
    bouncer = ini["pgbouncer"]
    assert (bouncer["listen_addr"], bouncer["listen_port"]) == ("0.0.0.0", "6432")
    assert bouncer["auth_type"] == "scram-sha-256" and bouncer["auth_file"] == "/etc/pgbouncer/userlist.txt"
    assert bouncer["admin_users"] == bouncer["stats_users"] == pg.user
    assert bouncer["pool_mode"] == pool.pool_mode
    for key in ("default_pool_size", "min_pool_size", "reserve_pool_size", "max_client_conn"):
        assert bouncer[key] == str(getattr(pool, key))
    assert bouncer["ignore_startup_parameters"] == "extra_float_digits"
    assert "logfile" not in bouncer


# -- compose ------------------------------------------------------------------------------


@pytest.mark.tools
def test_compose_export_matches_the_specs(rendered) -> None:
    platform, out, files = rendered
    compose_dir = out / platform.paths.deploy
    secrets = out / ".mindscape" / "secrets.env"
    secrets.parent.mkdir(parents=True, exist_ok=True)
    secrets.write_text("POSTGRES_PASSWORD=pg-secret\nREDIS_PASSWORD=redis-secret\nGRAFANA_ADMIN_PASSWORD=gf\n")
    # The command the file's header tells users to run, from the folder holding the file.
    header = re.search(r"^#   (docker compose .*) up -d$", files[deploy(platform, "compose.yaml")], re.M)
    args = header.group(1).split()[2:]
    result = run(tool("docker-compose"), *args, "-f", "compose.yaml", "config", cwd=compose_dir)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    specs = container_specs(platform)
    assert list(config["services"]) == sorted(specs)
    assert config["networks"]["default"]["name"] == platform.network_name
    for name, spec in specs.items():
        service = config["services"][name]
        assert service["container_name"] == platform.container_name(name)
        assert service["image"] == spec.image
        assert service["labels"] == {"io.mindscape.project": platform.project, "io.mindscape.service": name}
        assert service.get("command", []) == [arg.replace("$", "$$") for arg in spec.command]
        published = "" if spec.host_port == "auto" else str(spec.host_port)
        assert service["ports"] == [f"{spec.bind}:{published}:{spec.container_port}/tcp"]
        environment = {key: value.replace("$", "$$") for key, value in spec.environment.items()}
        secret_values = {
            "POSTGRES_PASSWORD": "pg-secret",
            "REDIS_PASSWORD": "redis-secret",
            "GRAFANA_ADMIN_PASSWORD": "gf",
        }
        environment |= {key: secret_values[secret] for key, secret in spec.secrets.items()}
        assert service.get("environment", {}) == environment
        volumes = service.get("volumes", [])
        expected = (
            [{"type": "volume", "source": platform.volume_name(name), "target": spec.volume_target}]
            if spec.volume_target
            else []
        )
        expected += [
            {"type": "bind", "source": str(out / mount.source), "target": mount.target, "read_only": mount.read_only}
            for mount in spec.mounts
        ]
        assert volumes == expected
        if spec.volume_target:
            assert config["volumes"][platform.volume_name(name)]["name"] == platform.volume_name(name)
        if spec.healthcheck:  # as provision.py asks Docker for it
            start = platform.services.enabled()[name].health.start_period.seconds
            assert service["healthcheck"] == {
                "test": [part.replace("$", "$$") for part in spec.healthcheck],
                "interval": "5s",
                "timeout": "3s",
                "retries": 3,
                **({"start_period": go_duration(start)} if start else {}),
            }
        else:
            assert "healthcheck" not in service
        assert service["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
        assert service.get("depends_on", {}) == {
            dep: {"condition": "service_healthy" if specs[dep].healthcheck else "service_started"}
            for dep in spec.depends_on
        }
        assert ("host.docker.internal:host-gateway" in service.get("extra_hosts", [])) == spec.reach_host


@pytest.mark.tools
def test_compose_refuses_to_run_without_the_secrets(tmp_path: Path) -> None:
    """Without --env-file, compose stops instead of starting Redis with an empty password."""
    platform = load([EXAMPLES / "minimal" / "platform.yaml"], env={}).platform
    compose = tmp_path / "compose.yaml"
    compose.write_text(render_platform(platform)[deploy(platform, "compose.yaml")])
    result = run(tool("docker-compose"), "-f", str(compose), "config", cwd=tmp_path)
    assert result.returncode != 0
    assert "--env-file ../.mindscape/secrets.env" in result.stderr


# -- runbooks -----------------------------------------------------------------------------


def test_runbooks_name_this_platforms_containers_and_commands(rendered) -> None:
    platform, _, files = rendered
    books = {
        name: files[f"{platform.paths.runbooks}/{name}.md"]
        for name in ("backup-and-restore", "incident-response", "daily-checks")
    }
    specs = container_specs(platform)
    for name in specs:
        assert f"`{platform.container_name(name)}`" in books["incident-response"]
    for command in ("mindscape status", "mindscape check", "mindscape logs SERVICE"):
        assert command in books["incident-response"]
    assert "mindscape check" in books["daily-checks"] and "mindscape status" in books["daily-checks"]
    restore = books["backup-and-restore"]
    if platform.backups.enabled:
        for command in ("create", "list", "restore BACKUP_ID", "verify BACKUP_ID", "prune"):
            assert f"mindscape backup {command}" in restore, command
    pg = platform.services.postgres
    if pg:
        port = specs["postgres"].host_port
        container = platform.container_name("postgres")
        shown = f"-p {port} " if port != "auto" else f"docker port {container} 5432/tcp"
        assert shown in books["incident-response"]
        assert f"-U {pg.user} -d {pg.database}" in books["incident-response"]
        assert f"docker exec {platform.container_name('postgres')} pg_dump" in restore


# -- hostile values and determinism -------------------------------------------------------


def test_hostile_values_keep_every_file_intact(tmp_path: Path) -> None:
    platform = hostile(tmp_path)
    files = render_platform(platform)
    ci = yaml.safe_load(files[f"{platform.paths.workflows}/ci.yml"])
    scripts = "".join(step.get("run", "") for job in ci["jobs"].values() for step in job["steps"])
    assert "$SOURCE_DIR" in scripts  # paths reach the shell only through env, quoted

    compose = yaml.safe_load(files[deploy(platform, "compose.yaml")])
    command = compose["services"]["postgres"]["command"]
    assert f"search_path={HOSTILE_SETTING}".replace("$", "$$") in command

    headers = nginx_headers(files[deploy(platform, "gateway/nginx.conf")])
    assert headers["Content-Security-Policy"] == HOSTILE_CSP
    assert headers["Permissions-Policy"] == HOSTILE_PERMISSIONS
    json.loads(files[deploy(platform, "security/policy.json")])


@pytest.mark.tools
def test_hostile_values_pass_the_real_tools(tmp_path: Path) -> None:
    platform = hostile(tmp_path / "source")
    files = render_platform(platform)
    out = tmp_path / "project"
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    workflows = [str(out / rel) for rel in files if rel.endswith(".yml") and "workflows" in rel]
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows)
    assert result.returncode == 0, result.stdout
    result = nginx_test(out / deploy(platform, "gateway/nginx.conf"), tmp_path)
    assert result.returncode == 0, result.stderr
    env = {**os.environ, "POSTGRES_PASSWORD": "a", "REDIS_PASSWORD": "b", "GRAFANA_ADMIN_PASSWORD": "c"}
    result = run(tool("docker-compose"), "-f", str(out / deploy(platform, "compose.yaml")), "config", env=env)
    assert result.returncode == 0, result.stderr
    command = yaml.safe_load(result.stdout)["services"]["postgres"]["command"]
    assert f"search_path={HOSTILE_SETTING}".replace("$", "$$") in command


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    platform = everything_on(tmp_path)
    assert render_platform(platform) == render_platform(everything_on(tmp_path))


# -- the gateway, running -----------------------------------------------------------------


class _App(BaseHTTPRequestHandler):
    """The application behind the gateway: echoes what it received, and sets headers the
    gateway must replace."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Powered-By", "app")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int, method: str, path: str, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def running_gateway(tmp_path: Path):
    """The rendered nginx.conf served by the real nginx in front of a stand-in application.
    Only the listen port and pid path are changed, so it can run beside anything else."""
    nginx = tool("nginx")
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    data = full_data()
    data["services"]["gateway"]["upstream"] = f"http://127.0.0.1:{app.server_address[1]}/api"
    data["security"]["headers"].update(
        content_security_policy=literal(HOSTILE_CSP), permissions_policy=literal(HOSTILE_PERMISSIONS)
    )
    data["security"]["rate_limit"].update(requests_per_second=1, burst=2, status=429)
    platform = platform_from(tmp_path, data)
    port = free_port()
    text = render_platform(platform)[deploy(platform, "gateway/nginx.conf")]
    text = text.replace("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    (tmp_path / "logs").mkdir()
    audit = (tmp_path / "access.log").open("w")
    command = [nginx, "-e", "stderr", "-p", f"{tmp_path}/", "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=audit, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if fetch(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"nginx did not start: {process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("nginx did not answer /healthz within 10s")
            time.sleep(0.05)
        yield platform, port, tmp_path / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        audit.close()
        app.shutdown()


@pytest.mark.tools
def test_running_gateway_headers_cors_proxy_and_rate_limit(running_gateway) -> None:
    platform, port, audit_log = running_gateway
    origin, other = platform.security.cors.allowed_origins[0], "https://evil.example.com"

    status, headers, body = fetch(port, "GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Security-Policy"] == HOSTILE_CSP
    assert headers["Permissions-Policy"] == HOSTILE_PERMISSIONS
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Server"] == "nginx"  # no version

    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    status, headers, _ = fetch(port, "OPTIONS", "/api/x", preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Methods"] == ", ".join(platform.security.cors.allowed_methods)
    assert headers["Access-Control-Allow-Headers"] == ", ".join(platform.security.cors.allowed_headers)
    assert headers["Access-Control-Max-Age"] == "3600"
    assert headers["Vary"] == "Origin"

    status, headers, body = fetch(port, "GET", "/things?x=1", {"Origin": other, "X-Request-ID": "req-42"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers  # the app's `*` is dropped, the origin is not listed
    assert "X-Powered-By" not in headers and headers["X-Request-ID"] == "req-42"
    received = json.loads(body)
    assert received["path"] == "/api/things?x=1"
    assert received["headers"]["X-Request-ID"] == "req-42"
    assert received["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert received["headers"]["X-Forwarded-Proto"] == "http"

    statuses = [fetch(port, "GET", "/burst")[0] for _ in range(8)]
    assert platform.security.rate_limit.status in statuses

    deadline = time.monotonic() + 5
    while (
        (lines := [json.loads(line) for line in audit_log.read_text().splitlines()])
        and len(lines) < 10
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)  # nginx logs after it answers
    entry = next(line for line in lines if line["uri"] == "/things?x=1")
    assert entry["request_id"] == "req-42" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["origin"] == other and entry["remote_addr"] == "127.0.0.1"
    assert {"time", "bytes", "duration", "user_agent"} <= set(entry)
    assert not any(line["uri"] == "/healthz" for line in lines)
