"""Which database image backups.pitr runs: the official one is derived (pgBackRest added, from a
rendered build file `up` builds), any other is used as it is. Pure: no engine (the build is
tests/test_pitr_image_engine.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.spec import build_files, container_specs


def platform_of(tmp_path: Path, image: str, pitr: bool = True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "platform.yaml"
    path.write_text(
        f"version: 1\nproject: shop\nservices:\n  postgres: {{image: '{image}'}}\n"
        f"backups:\n  pitr: {{enabled: {str(pitr).lower()}}}\n"
    )
    return load([path], env={}).platform


@pytest.mark.parametrize(
    ("image", "derived"),
    [
        ("postgres:16", "mindscape-derived/postgres-pgbackrest:16"),
        ("postgres", "mindscape-derived/postgres-pgbackrest:latest"),
        ("docker.io/library/postgres:16.4-bookworm", "mindscape-derived/postgres-pgbackrest:16.4-bookworm"),
        ("library/postgres:15@sha256:" + "a" * 64, "mindscape-derived/postgres-pgbackrest:15"),
        ("mindscape-local/postgres:15", None),  # has pgBackRest
        ("registry.example.com:5000/team/postgres:16", None),  # someone's own image: used as it is
        ("postgis/postgis:16-3.4", None),
    ],
)
def test_the_official_image_is_derived_any_other_is_used_as_it_is(tmp_path: Path, image: str, derived: str | None):
    platform = platform_of(tmp_path, image)
    spec = container_specs(platform)["postgres"]
    assert spec.image == (derived or image)
    assert build_files(platform) == ({"postgres": "deploy/postgres/Containerfile"} if derived else {})
    files = render_platform(platform)
    assert ("deploy/postgres/Containerfile" in files) == bool(derived)
    if derived:
        text = files["deploy/postgres/Containerfile"]
        assert f"ARG BASE={image}\nFROM ${{BASE}}\n" in text
        assert "apt-get install -y --no-install-recommends pgbackrest ca-certificates" in text
        assert f"-t {derived} ." in text
        compose = yaml.safe_load(files["deploy/compose.yaml"])["services"]["postgres"]
        assert compose["image"] == derived
        assert compose["build"] == {"context": "./postgres", "dockerfile": "Containerfile"}


def test_without_pitr_the_official_image_runs_as_it_is(tmp_path: Path):
    platform = platform_of(tmp_path, "postgres:16", pitr=False)
    off = container_specs(platform)["postgres"]
    assert off.image == "postgres:16" and build_files(platform) == {}
    assert "deploy/postgres/Containerfile" not in render_platform(platform)
    on = container_specs(platform_of(tmp_path / "on", "postgres:16"))["postgres"]
    assert on.image != off.image and on.config_hash() != off.config_hash()  # turning PITR on recreates it
    assert "build" not in yaml.safe_load(render_platform(platform)["deploy/compose.yaml"])["services"]["postgres"]
