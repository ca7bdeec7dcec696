"""Which database image backups.pitr runs: the official one is derived (pgBackRest added, from a
rendered build file `up` builds), any other is used as it is. Pure: no engine (the build is
tests/test_pitr_image_engine.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.spec import container_specs


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
    assert spec.build_file == ("deploy/postgres/Containerfile" if derived else None)
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


def test_without_pitr_the_official_image_runs_as_it_is_and_the_build_file_is_not_hashed(tmp_path: Path):
    off = container_specs(platform_of(tmp_path / "off", "postgres:16", pitr=False))["postgres"]
    assert off.image == "postgres:16" and off.build_file is None
    assert "deploy/postgres/Containerfile" not in render_platform(platform_of(tmp_path / "off", "postgres:16", False))
    on = container_specs(platform_of(tmp_path / "on", "postgres:16"))["postgres"]
    # the image's id is in the hash (a changed build file makes a new one); the file's path is not
    assert on.config_hash() == dataclasses.replace(on, build_file=None).config_hash()
    assert "build_file" not in on.parts()
