"""Writing generated files: statuses, hand-edit protection, atomic writes, the manifest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mindscape_ops.adapters.files import atomic_write, sha256_text
from mindscape_ops.errors import OperationFailed
from mindscape_ops.render.files import Status, apply, compare
from mindscape_ops.render.jinja import nginx_str, yaml_str
from mindscape_ops.render.marker import MARKER, with_marker, written_by_us

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
    diff = changes[0].diff()
    assert "\n-a: 1\n" in diff and "\n+a: 2\n" in diff
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
    assert with_marker("x/ci.yml", "a\n").splitlines()[0].startswith(f"# {MARKER} (body sha256:")
    assert with_marker("x/nginx.conf", "a\n").splitlines()[0].startswith(f"# {MARKER} (body sha256:")
    first = with_marker("x/run.md", "a\n").splitlines()[0]
    assert first.startswith(f"<!-- {MARKER} (body sha256:") and first.endswith(" -->")
    assert with_marker("x/d.json", "{}") == "{}"


def test_the_stamp_tells_our_body_from_an_edited_one():
    text = with_marker("x/ci.yml", "jobs: {}\n")
    assert written_by_us(text) is True
    assert written_by_us(text + "# edited\n") is False
    assert written_by_us("jobs: {}\n") is None


def test_in_a_fresh_clone_a_committed_hand_edit_is_kept(tmp_path):
    """No manifest (state.json is not committed): the stamp decides, not the marker alone."""
    (tmp_path / "ours.yml").write_text(with_marker("ours.yml", "old: 1\n"))
    (tmp_path / "edited.yml").write_text(with_marker("edited.yml", "old: 1\n") + "tuned: by hand\n")
    changes = compare(tmp_path, {"ours.yml": A, "edited.yml": A}, {})
    assert statuses(changes) == {"ours.yml": Status.STALE, "edited.yml": Status.HAND_EDITED}
    apply(tmp_path, changes, {}, force=False)
    assert (tmp_path / "edited.yml").read_text().endswith("tuned: by hand\n")


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
    from mindscape_ops.render.jinja import templates_dir

    assert (templates_dir() / "starter" / "platform.yaml.j2").is_file()
    assert isinstance(templates_dir(), Path)


def test_a_recorded_file_gone_and_no_longer_rendered_leaves_the_manifest(tmp_path):
    manifest = apply(tmp_path, compare(tmp_path, {"a.yml": A, "docs/b.md": B}, {}), {}, force=False)
    (tmp_path / "docs/b.md").unlink()  # the user removed it; platform.yaml no longer renders it either
    changes = compare(tmp_path, {"a.yml": A}, manifest)
    assert statuses(changes) == {"a.yml": Status.UNCHANGED}
    assert apply(tmp_path, changes, manifest, force=False) == {"a.yml": sha256_text(A)}


def test_a_forgotten_manifest_entry_does_not_disable_the_fast_path(tmp_path, monkeypatch):
    from mindscape_ops import render
    from mindscape_ops.config.loader import load
    from mindscape_ops.workspace.store import Workspace

    (tmp_path / "platform.yaml").write_text("version: 1\nproject: fast\nservices:\n  redis: {}\n")
    loaded, workspace = load([tmp_path / "platform.yaml"], env={}), Workspace(tmp_path)
    render.write(loaded, workspace)
    manifest = workspace.read_state()["manifest"]
    workspace.update_state(manifest={**manifest, "docs/runbooks/gone.md": "0" * 64})
    render.write(loaded, workspace)
    assert workspace.read_state()["manifest"] == manifest

    def must_not_render(platform):
        raise AssertionError("rendered although nothing changed")

    monkeypatch.setattr(render, "render_platform", must_not_render)
    assert {c.status for c in render.write(loaded, workspace)} == {Status.UNCHANGED}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionError(13, "Permission denied"), "cannot write a.yml: Permission denied"),
        (IsADirectoryError(21, "Is a directory"), "cannot write a.yml: Is a directory"),
        (OSError(28, "No space left on device"), "cannot write a.yml: No space left on device"),
    ],
)
def test_a_failed_write_is_an_operation_failure(tmp_path, monkeypatch, error, expected):
    from mindscape_ops.render import files

    def failing(path, text, mode=None):
        raise error

    monkeypatch.setattr(files, "atomic_write", failing)
    with pytest.raises(OperationFailed) as caught:
        apply(tmp_path, compare(tmp_path, {"a.yml": A}, {}), {}, force=False)
    assert caught.value.message == expected and caught.value.hint


def test_a_directory_in_place_of_a_generated_file_is_an_operation_failure(tmp_path):
    (tmp_path / "a.yml").mkdir()
    with pytest.raises(OperationFailed, match="cannot write a.yml"):
        apply(tmp_path, compare(tmp_path, {"a.yml": A}, {}), {}, force=False)


def test_the_code_digest_covers_templates_and_python_code(tmp_path, monkeypatch):
    from mindscape_ops.render import resources

    package = tmp_path / "mindscape_ops"
    (package / "templates").mkdir(parents=True)
    (package / "templates/x.j2").write_text("t")
    (package / "cli.py").write_text("v = 1\n")
    monkeypatch.setattr(resources, "PACKAGE_DIR", package)
    digest = resources.code_and_templates_digest.__wrapped__  # the uncached function
    first = digest()
    (package / "notes.txt").write_text("not code")
    assert digest() == first
    (package / "cli.py").write_text("v = 2\n")  # an editable install, same __version__
    second = digest()
    assert second != first
    (package / "templates/x.j2").write_text("u")
    assert digest() not in (first, second)


def test_render_fingerprint_and_noop_key_follow_the_code_digest(tmp_path, monkeypatch):
    import json

    from mindscape_ops.config.loader import load
    from mindscape_ops.provision import noop as noop_up
    from mindscape_ops.render import fingerprint, resources

    assert resources.code_and_templates_digest() == resources.code_and_templates_digest()
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: fp\n")
    (tmp_path / ".mindscape").mkdir()
    (tmp_path / ".mindscape/secrets.env").write_text("")
    (tmp_path / ".mindscape/state.json").write_text(json.dumps({"manifest": {}}))
    loaded = load([tmp_path / "platform.yaml"], env={})
    seen = {}
    for code in ("one", "two"):
        monkeypatch.setattr(resources, "code_and_templates_digest", lambda code=code: code)
        monkeypatch.setattr(noop_up, "code_and_templates_digest", lambda code=code: code)
        seen[code] = (fingerprint(loaded), noop_up.input_key([tmp_path / "platform.yaml"], {}, [], [])[0])
    assert seen["one"][0] != seen["two"][0] and seen["one"][1] != seen["two"][1]
