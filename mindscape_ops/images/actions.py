"""The library calls behind `mindscape images build|list` and the images `up` builds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from mindscape_ops.images import choice
from mindscape_ops.images.build import Builder, Row, Say
from mindscape_ops.images.recipe import load_recipes, namespace

BUILD_ROW = "local images"  # the progress row of `up` that carries the build's own lines


def platform_images(project) -> list[str]:
    """The images of the services a platform enables."""
    from mindscape_ops.services.spec import container_specs

    return [spec.image for spec in container_specs(project.platform).values()]


def build(names: Iterable[str], everything: bool, force: bool, images: Iterable[str] | None, say: Say) -> list[str]:
    """`images build`: the named recipes, every one (--all) or the platform's local images; the
    tags built (none when all were current)."""
    wanted = choice.select(load_recipes(), names, everything, images, namespace())  # bad usage: before the engine
    if not wanted:
        say(f"nothing to build: the platform uses no {namespace()}/* image that has a recipe")
        return []
    builder = Builder(say)
    rows = builder.rows(wanted)
    todo = choice.to_build(wanted, {r.recipe.service: r.state for r in rows}, force)
    if not todo:
        say(f"up to date: {', '.join(r.tag for r in rows)} (--force rebuilds)")
        return []
    for _service, text in builder.announce(todo):
        say(text)
    return builder.build(wanted, force)


def listing() -> list[Row]:
    return Builder(lambda _text: None).rows()


def build_for_up(missing: Mapping[str, str], event: Callable[[str, str, str], None]) -> list[str]:
    """Before `up` starts its services: build those of their missing images (service -> image)
    that a recipe makes, saying first what each costs, then how long it has been running."""
    recipes = choice.missing_for_up(load_recipes(), missing.values(), {}, namespace())
    if not recipes:
        return []
    started = time.monotonic()
    builder = Builder(lambda text: event(BUILD_ROW, "building", text))
    by_image = {image: service for service, image in missing.items()}
    service_of = {recipe.service: by_image[recipe.tag(builder.prefix)] for recipe in recipes}
    builder.preflight(recipes)  # exit 3 before anything starts when this machine cannot
    for recipe in recipes:
        if not recipe.go:
            event(service_of[recipe.service], "building", f"{recipe.tag(builder.prefix)} from Debian packages")
    for recipe_name, text in builder.announce(recipes):
        event(service_of[recipe_name] if recipe_name else BUILD_ROW, "building", text)
    built = builder.build(recipes)
    for recipe in recipes:
        event(service_of[recipe.service], "built", recipe.tag(builder.prefix))
    event(BUILD_ROW, "built", f"{len(built)} image(s) in {choice.duration(time.monotonic() - started)}")
    return built


BUILD_HASH_LABEL = "io.mindscape.build-hash"  # sha256 of the build file an image was built from


def build_derived(root, wanted: Mapping[str, tuple[str, str]], event: Callable[[str, str, str], None]) -> list[str]:
    """Before `up` starts its services: build each image derived from another (service ->
    (image, its rendered build file, relative to `root`)) that the engine lacks or that was built
    from another version of that file. The images built."""
    import hashlib

    from mindscape_ops.adapters.image_build import ImageStore
    from mindscape_ops.errors import OperationFailed

    built = []
    store = ImageStore()
    for service, (image, build_file) in wanted.items():
        path = root / build_file
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise OperationFailed(
                f"{service}: cannot read its build file {build_file} ({exc.strerror or exc})",
                "`mindscape render` writes it",
            ) from None
        if (store.labels(image) or {}).get(BUILD_HASH_LABEL) == digest:
            continue
        event(service, "building", f"{image} from {build_file}")
        started = time.monotonic()
        store.build_file(
            str(path.parent),
            path.name,
            image,
            {BUILD_HASH_LABEL: digest},
            lambda line, s=service: event(s, "building", line),
        )
        event(service, "built", f"{image} in {choice.duration(time.monotonic() - started)}")
        built.append(image)
    return built
