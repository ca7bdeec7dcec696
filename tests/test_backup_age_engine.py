"""The backup-age alert where no node_exporter runs, on a real platform (`mindscape up` of the
local images): after `backup create`, Prometheus has the backup's time from the recording rules
it was asked to reload, and both backup alerts are loaded without an evaluation error."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from .conftest import EXAMPLES, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


def platform_text(project: str) -> str:
    lines = [f"version: 1\nproject: {project}\nservices:\n"]
    for line in (EXAMPLES / "local" / "platform.yaml").read_text().splitlines():
        if line.strip().split(":")[0] in ("postgres", "prometheus"):
            lines.append(line.replace("prometheus: {image: ", "prometheus: {evaluation_interval: 1s, image: ") + "\n")
    return "".join(lines)


def test_prometheus_reads_the_backup_time_itself(tmp_path, docker_client, local_images):
    project = unique_project("bage")
    (tmp_path / "platform.yaml").write_text(platform_text(project))
    try:
        up = run_cli("up", cwd=tmp_path, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        port = json.loads((tmp_path / ".mindscape" / "state.json").read_text())["ports"]["prometheus"]

        def query(path: str) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
                return answer.read().decode()

        metric = "/api/v1/query?query=mindscape_backup_last_success_timestamp_seconds"
        assert '"result":[]' in query(metric)  # no backup yet
        created = run_cli("backup", "create", "--service", "postgres", cwd=tmp_path, timeout=300)
        assert created.returncode == 0, created.stdout + created.stderr
        deadline, text = time.monotonic() + 30, ""
        while '"service":"postgres"' not in text and time.monotonic() < deadline:
            time.sleep(1)
            try:
                text = query(metric)
            except (urllib.error.URLError, OSError):
                text = ""
        assert '"service":"postgres"' in text, text
        rules = json.loads(query("/api/v1/rules"))["data"]["groups"]
        names = {rule.get("name") for group in rules for rule in group["rules"]}
        assert {"BackupTooOld", "BackupNeverRecorded"} <= names
        assert not [r["name"] for g in rules for r in g["rules"] if r.get("health") == "err" or r.get("lastError")]
    finally:
        remove_project(docker_client, project)
