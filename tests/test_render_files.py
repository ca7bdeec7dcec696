"""Writing generated files: statuses, hand-edit protection, atomic writes, the manifest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mindscape_ops.fsutil import atomic_write, sha256_text
from mindscape_ops.render.engine import MARKER, nginx_str, with_marker, yaml_str
from mindscape_ops.render.files import Status, apply, compare

A = with_marker("a.yml", "a: 1\n")
B = with_marker("docs/b.md", "# b\n")


def statuses(changes):
    return {c.path: c.status for c in changes}


def test_first_render_creates_everything(tmp_path):
    changes = compare(tmp_path, {"a.yml": A, "docs/b.md": B}, {})
    assert statuses(changes) == {"a.yml": Status.MISSING, "docs/b.md": Status.MISSING}
    manifest = apply(tmp_path, changes, {}, force=False)
    assert (tmp_path / "docs/b.md").read_text() == B
    assert manifest == {"a.yml": sha256_text(A), "docs/b.md": sha256_text(B)}
    assert statuses(compare(tmp_path, {"a.yml": A, "docs/b.md": B}, manifest)) == {
        "a.yml": Status.UNCHANGED,
        "docs/b.md": Status.UNCHANGED,
    }


def test_stale_file_is_updated(tmp_path):
    manifest = apply(tmp_path, compare(tmp_path, {"a.yml": A}, {}), {}, force=False)
    newer = with_marker("a.yml", "a: 2\n")
    changes = compare(tmp_path, {"a.yml": newer}, manifest)
    assert statuses(changes) == {"a.yml": Status.STALE}
    assert "-a: 1\n+a: 2" in changes[0].diff()
    apply(tmp_path, changes, manifest, force=False)
    assert (tmp_path / "a.yml").read_text() == newer


def test_hand_edited_file_is_kept_unless_forced(tmp_path):
    manifest = apply(tmp_path, compare(tmp_path, {"a.yml": A}, {}), {}, force=False)
    (tmp_path / "a.yml").write_text(A + "extra: hand\n")
    changes = compare(tmp_path, {"a.yml": A}, manifest)
    assert statuses(changes) == {"a.yml": Status.HAND_EDITED}
    kept = apply(tmp_path, changes, manifest, force=False)
    assert "extra: hand" in (tmp_path / "a.yml").read_text()
    assert kept == manifest  # still recorded as ours-then-edited: the next check reports it again
    apply(tmp_path, changes, manifest, force=True)
    assert (tmp_path / "a.yml").read_text() == A


def test_without_a_manifest_the_marker_decides(tmp_path):
    (tmp_path / "a.yml").write_text(with_marker("a.yml", "old: 1\n"))
    (tmp_path / "mine.yml").write_text("user: file\n")
    (tmp_path / "x.json").write_text("{}")
    changes = compare(tmp_path, {"a.yml": A, "mine.yml": A, "x.json": "[]"}, {})
    assert statuses(changes) == {"a.yml": Status.STALE, "mine.yml": Status.HAND_EDITED, "x.json": Status.HAND_EDITED}


def test_file_no_longer_rendered_is_orphaned_and_removed(tmp_path):
    manifest = apply(tmp_path, compare(tmp_path, {"a.yml": A, "docs/b.md": B}, {}), {}, force=False)
    changes = compare(tmp_path, {"a.yml": A}, manifest)
    assert statuses(changes) == {"a.yml": Status.UNCHANGED, "docs/b.md": Status.ORPHANED}
    manifest = apply(tmp_path, changes, manifest, force=False)
    assert not (tmp_path / "docs/b.md").exists() and "docs/b.md" not in manifest


def test_markers_follow_the_comment_syntax():
    assert with_marker("x/ci.yml", "a\n").splitlines()[0] == f"# {MARKER}"
    assert with_marker("x/nginx.conf", "a\n").splitlines()[0] == f"# {MARKER}"
    assert with_marker("x/run.md", "a\n").splitlines()[0] == f"<!-- {MARKER} -->"
    assert with_marker("x/d.json", "{}") == "{}"


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("before")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write(target, "after")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_sets_mode(tmp_path):
    atomic_write(tmp_path / "s.env", "K=V\n", mode=0o600)
    assert (tmp_path / "s.env").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("value", ['a "quoted" value', "line\nbreak", "{{ x }} # ; $HOME", "back\\slash"])
def test_yaml_str_round_trips(value):
    import yaml

    assert yaml.safe_load(f"key: {yaml_str(value)}\n")["key"] == value


def test_nginx_str_escapes_dollar_and_quotes():
    assert nginx_str('a "b" $c\\d') == '"a \\"b\\" ${dollar}c\\\\d"'
    with pytest.raises(ValueError):
        nginx_str("two\nlines")


def test_templates_dir_is_found():
    from mindscape_ops.render.engine import templates_dir

    assert (templates_dir() / "starter" / "platform.yaml.j2").is_file()
    assert isinstance(templates_dir(), Path)
