"""The image builder holds its cache's lock for the engine's imports and commits only (issue 22):
a Go program compiles outside it, so `up` building a missing image never waits behind the trace
store's compile running in the background."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from mindscape_ops.images.recipe import load_recipes

from .test_images import builder


@pytest.fixture(scope="module")
def recipes():
    return load_recipes()


def locked(cache: Path) -> bool:
    """Whether the cache's lock is held (a second lock on it cannot be had now)."""
    try:
        FileLock(str(cache / ".lock")).acquire(timeout=0)
    except Timeout:
        return True
    FileLock(str(cache / ".lock")).release()
    return False


def test_a_go_program_compiles_outside_the_cache_lock_and_the_images_are_committed_inside(
    monkeypatch, tmp_path, recipes
):
    """Another build holds the cache's lock until this build's compile has run: a compile that
    needed the lock would never run, and the build would hang."""
    import threading

    from mindscape_ops.images import build, gobuild, rootfs

    made = builder(monkeypatch, tmp_path)
    cache = made.cache
    seen: dict[str, bool] = {}
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(gobuild, "go_version", lambda: "go1.99")
    compiled, held = threading.Event(), threading.Event()

    def other_build():
        lock = FileLock(str(cache / ".lock"))
        lock.acquire()
        held.set()
        compiled.wait(60)
        lock.release()

    def compile_(cache_root, recipe):
        seen["compile"] = locked(cache)  # the other build holds it now
        compiled.set()
        return tmp_path / "binary"

    def ensure_base(*args):
        seen.setdefault("base", locked(cache))
        return "base"

    monkeypatch.setattr(gobuild, "build", compile_)
    monkeypatch.setattr(rootfs, "ensure_base", ensure_base)
    monkeypatch.setattr(build.Builder, "_debian_image", lambda self, base, r: seen.setdefault("debian", locked(cache)))
    monkeypatch.setattr(build.Builder, "_go_image", lambda self, base, r, b: seen.setdefault("go", locked(cache)))
    monkeypatch.setattr(build.Builder, "_remove_old", lambda self, base: None)
    holder = threading.Thread(target=other_build, daemon=True)
    holder.start()
    assert held.wait(10)
    made.build([recipes["jaeger"], recipes["redis"]])
    holder.join(10)
    assert compiled.is_set() and seen == {"compile": True, "base": True, "debian": True, "go": True}


def test_a_go_image_gone_stale_while_waiting_for_the_lock_is_compiled_and_built(monkeypatch, tmp_path, recipes):
    """What is to build is decided again once the lock is had (another build may have changed
    the base meanwhile): a Go recipe found stale only then is compiled too, not a KeyError (seen
    with two `images build` at once)."""
    from mindscape_ops.images import build, choice, gobuild, rootfs

    made = builder(monkeypatch, tmp_path)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(gobuild, "go_version", lambda: "go1.99")
    decisions = iter([[recipes["redis"]], [recipes["redis"], recipes["victorialogs"]]])
    monkeypatch.setattr(choice, "to_build", lambda wanted, states, force=False: next(decisions))
    compiled: list[str] = []
    monkeypatch.setattr(gobuild, "build", lambda cache_root, recipe: compiled.append(recipe.service) or tmp_path)
    monkeypatch.setattr(rootfs, "ensure_base", lambda *args: "base")
    monkeypatch.setattr(build.Builder, "_debian_image", lambda self, base, r: r.service)
    monkeypatch.setattr(build.Builder, "_go_image", lambda self, base, r, b: f"{r.service} from {b.result()}")
    monkeypatch.setattr(build.Builder, "_remove_old", lambda self, base: None)
    assert made.build([recipes["redis"], recipes["victorialogs"]]) == ["redis", f"victorialogs from {tmp_path}"]
    assert compiled == ["victorialogs"]


def test_two_builds_of_one_go_program_take_turns_on_its_own_lock(monkeypatch, tmp_path, recipes):
    """The second finds the binary the first made, and compiles nothing."""
    import threading

    from mindscape_ops.images import gobuild

    monkeypatch.setattr(gobuild, "go_version", lambda: "go1.99")
    recipe = recipes["victorialogs"]
    compiled: list[int] = []
    first_in = threading.Event()

    def compile_(cache_root, recipe, out):
        compiled.append(1)
        first_in.set()
        threading.Event().wait(0.3)  # a compile takes a while
        out.write_bytes(b"\x7fELF")
        return out

    monkeypatch.setattr(gobuild, "_compile", compile_)
    results: list[Path] = []
    first = threading.Thread(target=lambda: results.append(gobuild.build(tmp_path, recipe)))
    first.start()
    first_in.wait(10)
    results.append(gobuild.build(tmp_path, recipe))  # waits for the first's lock, then finds its binary
    first.join()
    assert compiled == [1] and results[0] == results[1] == gobuild.binary_path(tmp_path, recipe.go, "go1.99")
