"""Which local images to build, and what to tell the user first: pure decisions, no engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mindscape_ops.errors import UsageError
from mindscape_ops.images.recipe import DEBIAN_BASE_ESTIMATE, Recipe

BUILT, STALE, MISSING = "built", "stale", "missing"


def for_images(recipes: Mapping[str, Recipe], images: Iterable[str], prefix: str) -> list[Recipe]:
    """The recipes of these images (a platform's): `<prefix>/<service>:<version>` of a recipe
    exactly; any other image is not ours to build."""
    by_tag = {recipe.tag(prefix): recipe for recipe in recipes.values()}
    return [by_tag[image] for image in dict.fromkeys(images) if image in by_tag]


def select(
    recipes: Mapping[str, Recipe],
    names: Iterable[str],
    everything: bool,
    platform_images: Iterable[str] | None,
    prefix: str,
) -> list[Recipe]:
    """`images build [SERVICE...] [--all]`: the named recipes, every recipe, or the platform's."""
    names = list(names)
    if names and everything:
        raise UsageError("name services or pass --all, not both")
    if everything:
        return list(recipes.values())
    if names:
        unknown = [n for n in names if n not in recipes]
        if unknown:
            raise UsageError(f"no local image recipe for: {', '.join(unknown)}", f"recipes: {', '.join(recipes)}")
        return [recipes[n] for n in dict.fromkeys(names)]
    if platform_images is None:
        raise UsageError("no platform.yaml here or in a parent folder", "name the services to build, or pass --all")
    return for_images(recipes, platform_images, prefix)


def state(labels: Mapping[str, str] | None, image_hash: str) -> str:
    if labels is None:
        return MISSING
    return BUILT if labels.get("io.mindscape.recipe-hash") == image_hash else STALE


def to_build(wanted: Iterable[Recipe], states: Mapping[str, str], force: bool = False) -> list[Recipe]:
    """What `images build` builds: all it was asked for with --force, else what is not built."""
    return [r for r in wanted if force or states[r.service] != BUILT]


def missing_for_up(
    recipes: Mapping[str, Recipe], images: Iterable[str], present: Mapping[str, bool], prefix: str
) -> list[Recipe]:
    """What `up` builds before starting: the images of the services it is about to start that
    the engine lacks and a recipe makes (a stale one is used as it is: `images list` says so)."""
    return [r for r in for_images(recipes, images, prefix) if not present.get(r.tag(prefix), False)]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    return f"{round(seconds / 60)} min"


def announcement(
    recipes: Iterable[Recipe], prefix: str, base_cached: bool, binaries_cached: Iterable[str]
) -> list[tuple[str | None, str]]:
    """The lines said before a build starts: what, from what, how long, and that it is once; by
    service for the Go programs, one line (service None) for the images of the shared Debian base."""
    recipes, cached = list(recipes), set(binaries_cached)
    lines: list[tuple[str | None, str]] = []
    for recipe in (r for r in recipes if r.go):
        tag = recipe.tag(prefix)
        if recipe.service in cached:
            lines.append((recipe.service, f"building {tag} from its cached Go binary (seconds)"))
        else:
            cost = f"about {duration(recipe.estimate)} on 2 cores, once; cached afterwards"
            lines.append((recipe.service, f"building {tag} from its Go module: {cost}"))
    debian = [r for r in recipes if not r.go]
    if debian:
        what = (
            debian[0].tag(prefix)
            if len(debian) == 1
            else f"{len(debian)} images ({', '.join(r.service for r in debian)})"
        )
        if base_cached:
            lines.append((None, f"building {what} from the cached Debian base (seconds)"))
        else:
            cost = (
                f"about {duration(DEBIAN_BASE_ESTIMATE)} on 2 cores for the shared Debian base, once; cached afterwards"
            )
            lines.append((None, f"building {what} from Debian packages: {cost}"))
    return lines
