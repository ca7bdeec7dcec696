"""Building the local images: one build at a time per cache (a second one waits, saying so),
Go programs compiled while the Debian base is prepared, then one image per recipe derived from
the base (its files put in, its config set, committed), and what older builds left removed.

Every image carries io.mindscape.recipe-hash, a hash of the base and of its own recipe
(recipe.Recipe.image_hash): an image whose hash is current is not built again."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mindscape_ops.adapters.image_build import Derived, ImageStore
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
from mindscape_ops.images import choice, gobuild, rootfs
from mindscape_ops.images.recipe import Recipe, debian_version_matches, load_recipes, namespace

Say = Callable[[str], None]
TICK = 30.0  # seconds between "still building" lines


def cache_dir() -> Path:
    explicit = os.environ.get("MINDSCAPE_CACHE")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(explicit) if explicit else base / "mindscape"


@dataclass
class Row:
    recipe: Recipe
    tag: str
    image_hash: str
    state: str

    def as_dict(self) -> dict[str, object]:
        r = self.recipe
        return {"service": r.service, "tag": self.tag, "state": self.state, "source": r.source, "estimate": r.estimate}


class Builder:
    def __init__(self, say: Say, store: ImageStore | None = None) -> None:
        self.say, self.prefix, self.cache = say, namespace(), cache_dir()
        self.recipes = load_recipes()
        self.packages = rootfs.packages(self.recipes)
        self.base_hash = rootfs.base_hash(rootfs.rootfs_hash(self.packages))
        self.store = store or ImageStore()

    def rows(self, recipes: Iterable[Recipe] | None = None) -> list[Row]:
        """Each recipe's tag and whether its image is built, stale or missing."""
        rows = []
        for recipe in self.recipes.values() if recipes is None else recipes:
            tag, image_hash = recipe.tag(self.prefix), recipe.image_hash(self.base_hash)
            rows.append(Row(recipe, tag, image_hash, choice.state(self.store.labels(tag), image_hash)))
        return rows

    def announce(self, recipes: Iterable[Recipe]) -> list[tuple[str | None, str]]:
        """What the build will cost, said before it starts (choice.announcement)."""
        base_cached = self.store.labels(f"{self.prefix}/base:{self.base_hash}") is not None or self._rootfs_at_hand()
        recipes = list(recipes)
        cached = [r.service for r in recipes if gobuild.is_built(self.cache, r)]
        return choice.announcement(recipes, self.prefix, base_cached, cached)

    def _rootfs_at_hand(self) -> bool:
        return rootfs.rootfs_available(self.store, self.cache, rootfs.rootfs_hash(self.packages))

    def preflight(self, todo: list[Recipe]) -> None:
        """Refuse before anything starts when this machine cannot build these images."""
        for recipe in todo:
            if recipe.go and not gobuild.is_built(self.cache, recipe):
                gobuild.need_go(recipe)
        base_missing = self.store.labels(f"{self.prefix}/base:{self.base_hash}") is None
        if todo and os.geteuid() != 0 and base_missing and not self._rootfs_at_hand():
            names = " ".join(r.service for r in todo)
            raise EnvironmentUnusable(
                f"building {', '.join(r.tag(self.prefix) for r in todo)} needs the Debian base, made once by "
                "debootstrap as root",
                f"run `sudo mindscape images build {names}` once (later builds reuse the cached base)",
            )

    def build(self, wanted: list[Recipe], force: bool = False) -> list[str]:
        """Build what is not current among `wanted` (everything with force); the tags built."""
        todo = choice.to_build(wanted, {r.recipe.service: r.state for r in self.rows(wanted)}, force)
        if not todo:
            return []
        self.preflight(todo)
        self.cache.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        say = self.say

        def timed(text: str) -> None:
            say(f"[{time.monotonic() - started:.0f}s] {text}")

        self.say = timed
        ticking = threading.Event()
        still = f"still building {todo[0].tag(self.prefix)}" if len(todo) == 1 else f"still building {len(todo)} images"
        threading.Thread(target=_tick, args=(ticking, lambda: timed(still)), daemon=True).start()
        try:
            built = self._build(todo, wanted, force)
        finally:
            ticking.set()
            self.say = say
        if built:
            timed("done")
        return built

    def _build(self, todo: list[Recipe], wanted: list[Recipe], force: bool) -> list[str]:
        """Go programs compile outside the cache's lock (Go's own caches take concurrent builds;
        each binary's cache entry has a lock of its own), meanwhile the Debian base is made: the
        lock is held for the base and the engine's imports and commits only, so a build that
        waits for it (`up`'s) never waits behind a compile (the trace store's, in the background)."""
        built: list[str] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="go-build") as pool:
            binaries = {r.service: pool.submit(self._go_binary, r) for r in todo if r.go}
            with _one_build_at_a_time(self.cache, self.say):
                # the other build may have made them meanwhile
                todo = choice.to_build(wanted, {r.recipe.service: r.state for r in self.rows(wanted)}, force)
                if not todo:
                    return []
                base = rootfs.ensure_base(self.store, self.prefix, self.cache, self.packages, force, self.say)
                built += [self._debian_image(base, r) for r in todo if not r.go]
                if not any(r.go for r in todo):
                    self._remove_old(base)
                    return built
            for recipe in todo:
                if recipe.go:
                    if recipe.service not in binaries:  # gone stale while this build waited for the lock
                        binaries[recipe.service] = pool.submit(self._go_binary, recipe)
                    binaries[recipe.service].result()  # the compile ends outside the lock
            with _one_build_at_a_time(self.cache, self.say):
                base = rootfs.ensure_base(self.store, self.prefix, self.cache, self.packages, False, self.say)
                built += [self._go_image(base, r, binaries[r.service]) for r in todo if r.go]
                self._remove_old(base)
        return built

    def _labels(self, recipe: Recipe, provenance: str, version: str) -> dict[str, str]:
        return {
            "io.mindscape.recipe-hash": recipe.image_hash(self.base_hash),
            "io.mindscape.service": recipe.service,
            "io.mindscape.package-version": provenance,
            "org.opencontainers.image.title": recipe.service,
            "org.opencontainers.image.version": version,
        }

    def _derived(self, recipe: Recipe, labels: Mapping[str, str], files: list[tuple[str, bytes]]) -> Derived:
        volume = recipe.data.get("volume")
        changes = [f'VOLUME ["{volume}"]'] if volume else []
        return Derived(recipe.tag(self.prefix), recipe.config(), labels, files, changes)

    def _debian_image(self, base: str, recipe: Recipe) -> str:
        versions = dict(
            item.split("=", 1)
            for item in (self.store.labels(base) or {}).get(rootfs.LABEL_VERSIONS, "").split(",")
            if item
        )
        found = versions.get(recipe.package)
        tag = recipe.tag(self.prefix)
        if found is None or not debian_version_matches(recipe.version, found):
            raise OperationFailed(
                f"{tag}: Debian ships {recipe.package} {found or '(not found)'}, not {recipe.version}.x",
                f"update `version` in the recipe {recipe.service}.toml",
            )
        upstream = found.split(":", 1)[-1].split("-", 1)[0]
        self.store.derive(base, self._derived(recipe, self._labels(recipe, found, upstream), []))
        self.say(f"built {tag} ({recipe.package} {found})")
        return tag

    def _go_binary(self, recipe: Recipe) -> Path:
        if not gobuild.is_built(self.cache, recipe):
            log = self.cache / "go" / f"{recipe.service}.log"
            self.say(f"{recipe.service}: building {recipe.go.target}@{recipe.go.version} with Go; log: {log}")
        return gobuild.build(self.cache, recipe)

    def _go_image(self, base: str, recipe: Recipe, binary: Future[Path]) -> str:
        go, tag = recipe.go, recipe.tag(self.prefix)
        path = binary.result()
        folder, name = go.binary.rsplit("/", 1)
        archive = rootfs.tar_of([(name, 0o755, path.read_bytes())])
        version = (go.release or go.version).removeprefix("v")
        labels = self._labels(recipe, f"go:{go.target}@{go.version}", version)
        self.store.derive(base, self._derived(recipe, labels, [(folder or "/", archive)]))
        self.say(f"built {tag} (go {go.target}@{go.version}, {path.stat().st_size >> 20} MB)")
        return tag

    def _remove_old(self, base: str) -> None:
        """Drop the base tags of older builds, then our untagged images (chains rootfs <- base <-
        service: only leaves can go, so a few passes). Images a container still uses stay."""
        current = {base, f"{self.prefix}/base:rootfs-{rootfs.rootfs_hash(self.packages)}"}
        self.store.remove(t for t in self.store.tags(f"{self.prefix}/base") if t not in current)
        for _ in range(3):
            if not self.store.remove(self.store.dangling(rootfs.LABEL_ROOTFS)):
                break


def _tick(stop: threading.Event, say: Callable[[], None]) -> None:
    """Say every TICK seconds that the build goes on (the prefix says for how long)."""
    while not stop.wait(TICK):
        say()


class _one_build_at_a_time:
    """The cache's lock (flock, as the shell builder took it): a second build waits, saying so."""

    def __init__(self, cache: Path, say: Say) -> None:
        from filelock import FileLock

        self.lock, self.say = FileLock(str(cache / ".lock")), say

    def __enter__(self) -> None:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            self.say(f"another build of the local images is running (cache {self.lock.lock_file}); waiting for it")
            self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
