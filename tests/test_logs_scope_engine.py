"""`mindscape logs SERVICE --query` against the real log store (mindscape-local/victorialogs,
v1.52.1): whatever the query (an OR around the scope, `union`, `join`, a subquery), the rows
are the service's of this project only, because the scope goes to the store as its
extra_stream_filters; an unpaired parenthesis is refused before the store is asked."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindscape_ops.adapters.logstore import insert, query
from mindscape_ops.provision.logstore import service_query, service_stream
from mindscape_ops.services.victorialogs import CONTAINER_FIELD, PROJECT_FIELD, SERVICE_FIELD, STREAM_FIELDS

from .conftest import remove_project, run_cli, unique_project
from .test_render_gateway import free_port

pytestmark = pytest.mark.engine

IMAGES = {"victorialogs": "mindscape-local/victorialogs:1.52", "redis": "mindscape-local/redis:7"}


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory) -> Iterator[tuple[Path, str, str]]:
    for image in IMAGES.values():
        docker_client.images.get(image)  # built by scripts/build-local-images
    project = unique_project("ls")
    root = tmp_path_factory.mktemp("logscope")
    store_line = f"{{image: {IMAGES['victorialogs']}, port: auto, ingest_port: {free_port()}}}"
    (root / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        f"  victorialogs: {store_line}\n  redis: {{image: {IMAGES['redis']}, port: auto}}\n"
    )
    try:
        up = run_cli("up", cwd=root, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        port = json.loads((root / ".mindscape" / "state.json").read_text())["ports"]["victorialogs"]
        yield root, project, f"http://127.0.0.1:{port}"
    finally:
        remove_project(docker_client, project)


def seeded(base: str, project: str) -> str:
    """A marker in a line of this project's redis and in three lines it must never show."""
    marker = f"scope-{uuid.uuid4().hex}"
    owners = [(project, "redis"), (project, "postgres"), (project, "mindscape"), (f"{project}x", "redis")]
    rows = [
        {"_msg": f"{marker} {p} {s}", PROJECT_FIELD: p, SERVICE_FIELD: s, CONTAINER_FIELD: f"{p}-{s}"}
        for p, s in owners
    ]
    insert(base, rows, STREAM_FIELDS)
    deadline = time.monotonic() + 20
    while len(query(base, f'"{marker}"')) < len(rows):
        assert time.monotonic() < deadline, "the store did not show the seeded lines"
        time.sleep(0.3)
    return marker


@pytest.mark.parametrize(
    "template",
    [
        '"{m}"',
        '"{m}" OR (_msg:*)',
        '"{m}" OR {p}:*',
        '* | union ("{m}")',
        '"{m}" | union (*)',
        '_msg:in(* | fields _msg) AND "{m}"',
        '"{m}" | join by (_msg) ("{m}") inner',
    ],
)
def test_no_query_widens_the_service_scope(stack, template: str):
    root, project, base = stack
    marker = seeded(base, project)
    logsql = template.format(m=marker, p=json.dumps(PROJECT_FIELD))
    shown = run_cli("logs", "redis", "--query", logsql, "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert {(row[PROJECT_FIELD], row[SERVICE_FIELD]) for row in rows} == {(project, "redis")}, logsql
    assert {row["_msg"] for row in rows if marker in row["_msg"]} == {f"{marker} {project} redis"}


def test_an_unpaired_parenthesis_is_refused_and_the_store_scope_holds_even_without_that(stack):
    root, project, base = stack
    marker = seeded(base, project)
    refused = run_cli("logs", "redis", "--query", f'"{marker}") OR (_msg:*', cwd=root)
    assert refused.returncode == 2 and "closes no (" in refused.stderr and refused.stdout == ""
    # the query the unbalanced text made before: it left the in-query scope (every line)...
    escaped = (
        f'{json.dumps(PROJECT_FIELD)}:="{project}" AND {json.dumps(SERVICE_FIELD)}:="redis" AND ("x") OR ("{marker}")'
    )
    assert len(query(base, escaped)) == 4
    # ...and the store's own stream filter keeps it to the service's line
    scoped = query(base, escaped, stream=service_stream(project, "redis"))
    assert [row["_msg"] for row in scoped] == [f"{marker} {project} redis"]
    # a balanced query widens the in-query scope too (a union's subquery is not inside it)
    union = service_query(project, "redis", f'"{marker}" | union ("{marker}")')
    assert len({row["_msg"] for row in query(base, union)}) == 4
    assert {row["_msg"] for row in query(base, union, stream=service_stream(project, "redis"))} == {
        f"{marker} {project} redis"
    }


def test_the_audit_entries_in_the_store_are_scoped_the_same_way(stack):
    root, project, base = stack
    marker = seeded(base, project)
    shown = run_cli("logs", "mindscape", "--query", f'"{marker}" OR _msg:*', "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert {(row[PROJECT_FIELD], row[SERVICE_FIELD]) for row in rows} == {(project, "mindscape")}
    assert f"{marker} {project} mindscape" in [row["_msg"] for row in rows]
    assert any(row.get("audit.command") == "up" for row in rows)  # `up`'s own entry, sent by mindscape
