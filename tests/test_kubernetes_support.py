"""The test helpers' render cache: keyed on what a platform holds, never on which object it is."""

from __future__ import annotations

from . import kubernetes_support
from .kubernetes_support import minimal_data, platform_of, rendered


def test_a_reused_object_id_does_not_return_another_platforms_render(tmp_path, monkeypatch):
    # CPython hands a collected object's id to the next one: every object here gets the same id
    monkeypatch.setattr(kubernetes_support, "_RENDERED", {})
    monkeypatch.setattr(kubernetes_support, "id", lambda obj: 1, raising=False)
    first = platform_of(tmp_path / "first", minimal_data(namespace="first-ns"))
    second = platform_of(tmp_path / "second", minimal_data(namespace="second-ns"))
    assert any("first-ns" in text for text in rendered(first).values())
    assert not any("first-ns" in text for text in rendered(second).values())
    assert any("second-ns" in text for text in rendered(second).values())


def test_the_same_content_renders_once(tmp_path, monkeypatch):
    monkeypatch.setattr(kubernetes_support, "_RENDERED", {})
    one = platform_of(tmp_path / "one", minimal_data())
    again = platform_of(tmp_path / "again", minimal_data())
    assert rendered(one) is rendered(again)
