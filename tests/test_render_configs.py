"""redis.conf, pgbouncer.ini, the compose export and the runbooks rendered from platform.yaml,
checked by what reads them for real (docker-compose, ini parsers) and parsed back to prove that
values from platform.yaml arrive intact and in place; and rendering is deterministic."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.registry import BY_NAME
from mindscape_ops.services.spec import container_specs

from . import render_support
from .conftest import EXAMPLES
from .render_support import deploy, everything_on, run, tool

# Fixtures shared with the other render tests; pytest finds fixtures by name in the test module.
rendered = render_support.rendered
this_family_only = render_support.this_family_only


def go_duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds == int(seconds) else f"{seconds * 1000:.0f}ms"


# -- redis.conf, pgbouncer.ini ------------------------------------------------------------


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
        extra = [f"{spec.bind}:{host}:{port}/tcp" for port, host in spec.extra_ports.items()]
        assert service["ports"] == [f"{spec.bind}:{published}:{spec.container_port}/tcp", *extra]
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
            {
                "type": "bind",
                "source": mount.source if mount.host else str(out / mount.source),
                "target": mount.target,
                "read_only": mount.read_only,
            }
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
        # json-file by default; the log store's driver for every other container when it runs
        assert service["logging"] == {"driver": spec.log_driver, "options": spec.log_options}
        assert service.get("depends_on", {}) == {
            dep: {"condition": "service_healthy" if specs[dep].healthcheck else "service_started"}
            for dep in BY_NAME[name].depends_on
            if dep in specs
        }
        assert ("host.docker.internal:host-gateway" in service.get("extra_hosts", [])) == spec.reach_host


@pytest.mark.tools
def test_compose_holds_no_password_value_and_needs_none_to_run(tmp_path: Path) -> None:
    """No built-in service takes its password as a value any more (the pgbouncer exporter, the
    last one, reads a password file): the compose export references no secret, and compose reads
    it without --env-file."""
    platform = load([EXAMPLES / "local" / "platform.yaml"], env={}).platform
    compose = tmp_path / "compose.yaml"
    text = render_platform(platform)[deploy(platform, "compose.yaml")]
    compose.write_text(text)
    assert "${" not in text and "PGPASSWORD" not in text
    result = run(tool("docker-compose"), "-f", str(compose), "config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


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


# -- determinism --------------------------------------------------------------------------


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    platform = everything_on(tmp_path)
    assert render_platform(platform) == render_platform(everything_on(tmp_path))
