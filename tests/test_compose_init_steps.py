"""The compose export runs each service's init steps (KubeShape.init_steps: what `up`'s
before_start does, a pod's init containers on Kubernetes) as one-off services that the service
waits for: for the identity service, its Postgres role and database, then `kratos migrate sql`.
Pure render checks here; tests/test_compose_identity_engine.py runs the export."""

from __future__ import annotations

import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services import identity

from .conftest import EXAMPLES

DONE = {"condition": "service_completed_successfully"}


def compose(*files: str) -> dict:
    platform = load([EXAMPLES / "local" / name for name in files], env={}).platform
    return yaml.safe_load(render_platform(platform)["deploy/compose.yaml"])


def test_the_identity_service_waits_for_its_database_then_its_migrations():
    services = compose("platform.yaml", "auth.yaml")["services"]
    database, migrate, kratos = services["identity-database"], services["identity-migrate"], services["identity"]
    # the database step: in Postgres' image, once Postgres is healthy, with DATABASE_SCRIPT
    assert database["image"] == services["postgres"]["image"]
    assert database["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert database["command"][:2] == ["sh", "-c"]
    # compose reads `$$` as `$` and interpolates a lone `$`: every `$` of the script is doubled
    assert database["command"][2].replace("$$", "$") == identity.DATABASE_SCRIPT
    assert "$" not in database["command"][2].replace("$$", "") and "$" in identity.DATABASE_SCRIPT
    assert database["environment"]["IDENTITY_DATABASE"] == "identity"
    # the passwords are compose variables filled from secrets.env, never values
    assert database["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert database["environment"]["IDENTITY_DB_PASSWORD"].startswith("${IDENTITY_DB_PASSWORD:?")
    # the migrate step: Kratos' image as the identity container (its user and its files), after it
    assert migrate["image"] == kratos["image"]
    assert migrate["command"] == identity.migrate_command()[1:]  # the image's entrypoint is kratos
    assert migrate["user"] == kratos["user"] and migrate["volumes"] == kratos["volumes"]
    assert migrate["depends_on"] == {"identity-database": DONE}
    assert "environment" not in migrate and "ports" not in migrate
    # Kratos starts only once both finished well (and Postgres is healthy)
    assert kratos["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "identity-database": DONE,
        "identity-migrate": DONE,
    }
    for step in (database, migrate):  # one-offs: nothing published, no restart, the project's label
        assert "ports" not in step and "restart" not in step and "healthcheck" not in step
        assert step["labels"]["io.mindscape.project"] == "local"
    assert database["container_name"] == "local-identity-database"
    assert database["labels"]["io.mindscape.init-step"] == "identity/database"
    # its own service label: the image's (postgres, identity) would make mindscape take a step
    # for that service's container
    assert database["labels"]["io.mindscape.service"] == "identity-database"
    assert migrate["labels"]["io.mindscape.service"] == "identity-migrate"


def test_a_platform_without_init_steps_has_no_one_off_services():
    services = compose("platform.yaml")["services"]
    assert not [name for name in services if "-" in name]
    assert all(
        dependency["condition"] != DONE["condition"]
        for service in services.values()
        for dependency in service.get("depends_on", {}).values()
    )
