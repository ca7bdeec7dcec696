"""Where a service is reached from the host, what is safe to print of a database URL, and host
ports (free or not, who holds one, picking one for `port: auto`). No engine: the sockets are
real, on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.errors import EnvironmentUnusable, UsageError
from mindscape_ops.provision.endpoints import database_target, published_port, safe_display, service_address
from mindscape_ops.provision.ports import is_free, pick_free, process_holding
from mindscape_ops.workspace.project import Project
from mindscape_ops.workspace.store import Workspace


def project_of(tmp_path: Path, services: str, database: str = "") -> Project:
    (tmp_path / "platform.yaml").write_text(f"version: 1\nproject: ends\nservices:\n{services}{database}")
    loaded = load([tmp_path / "platform.yaml"], env={})
    return Project(loaded, Workspace(loaded.root))


# -- what may be printed of a database URL ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@db.example.com:6543/app", "postgresql://u@db.example.com:6543/app"),
        ("postgresql://u@h/app?password=s3cret", "postgresql://u@h:5432/app"),  # password in the query
        ("host=h port=5433 user=u password=s3cret dbname=d", "postgresql://u@h:5433/d"),  # key=value form
        ("postgresql:///app", "postgresql://localhost:5432/app"),
        ("not a url === s3cret", "(a database URL that cannot be parsed)"),
        ("postgres://u:s3cret@%zz", "(a database URL that cannot be parsed)"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str):
    assert safe_display(url) == shown
    assert "s3cret" not in safe_display(url)


def test_an_external_database_url_wins_only_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = project_of(tmp_path, "  redis: {}\n", "database: {url_env: SHOP_DB}\n")
    monkeypatch.setenv("SHOP_DB", "postgresql://app:s3cret@db.example.com/shop")
    target = database_target(project)
    assert target.external and target.conninfo == "postgresql://app:s3cret@db.example.com/shop"
    assert target.display == "postgresql://app@db.example.com:5432/shop"
    # `up` migrates only what it provisioned: without postgres there is nothing to migrate
    with pytest.raises(UsageError, match=r"no database: services\.postgres is not enabled and \$SHOP_DB is not set"):
        database_target(project, external=False)
    monkeypatch.delenv("SHOP_DB")
    with pytest.raises(UsageError) as caught:
        database_target(project)
    assert "export SHOP_DB=postgresql://" in caught.value.hint


# -- a service's address on the host -----------------------------------------------------------


def test_a_fixed_port_is_the_address_and_every_address_means_localhost(tmp_path: Path):
    project = project_of(tmp_path, "  postgres: {port: 6543, bind: 0.0.0.0}\n  redis: {port: 6380}\n")
    assert (service_address(project, "postgres").host, service_address(project, "postgres").port) == (
        "127.0.0.1",
        6543,
    )
    assert published_port(project, "redis") == 6380


def test_an_auto_port_not_picked_yet_says_to_run_up(tmp_path: Path):
    project = project_of(tmp_path, "  redis: {port: auto}\n")
    with pytest.raises(EnvironmentUnusable, match="redis has `port: auto` and no port was picked yet") as caught:
        published_port(project, "redis")
    assert caught.value.hint == "run `mindscape up redis` first"


def test_a_service_not_enabled_has_no_port(tmp_path: Path):
    project = project_of(tmp_path, "  redis: {}\n")
    with pytest.raises(UsageError, match=r"services\.postgres is not enabled in .*platform\.yaml") as caught:
        published_port(project, "postgres")
    assert caught.value.hint == "add `postgres: {}` under services:"


# -- host ports ---------------------------------------------------------------------------------


@pytest.fixture
def listening():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_listened_port_is_taken_and_named(listening: int):
    assert not is_free("127.0.0.1", listening)
    holder = process_holding(listening)
    assert holder is not None and holder.endswith(f"(pid {os.getpid()})")


def test_a_closed_port_is_free_and_held_by_nobody():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert is_free("127.0.0.1", port)
    assert process_holding(port) is None


def test_a_picked_port_is_free_and_not_one_given_to_another_service(listening: int):
    given = {pick_free("127.0.0.1", set()) for _ in range(5)}
    port = pick_free("127.0.0.1", given | {listening})
    assert port not in given and port != listening and is_free("127.0.0.1", port)


def test_picking_gives_up_when_every_port_is_avoided():
    from mindscape_ops.errors import OperationFailed

    with pytest.raises(OperationFailed, match="could not find a free port"):
        pick_free("127.0.0.1", set(range(1, 65536)))
