"""The recipes of the local images: one TOML file per service in `recipes/`, read and checked
before anything is built.

A recipe names EITHER a Debian package (`package`; `also`: more packages its image needs, such
as the postgres image's pgbackrest), installed in the shared Debian base, OR a
Go program (a `[go]` table: module, package, version, mode, and optionally release, binary,
ldflags, replace), built with this machine's Go and copied onto that base. The rest is the
image's config, as `docker create` options would give it: entrypoint, cmd, env, user, workdir,
expose, stop_signal, volume. `version` is the tag; the Debian package's upstream version (or
the Go release) must start with it, so an upgrade to a new major fails loudly instead of
mislabelling the image. `estimate`: seconds of a cold build on 2 cores (Go programs; a Debian
image costs its share of the one Debian base, DEBIAN_BASE_ESTIMATE).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindscape_ops.errors import OperationFailed

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
NAMESPACE_ENV = "MINDSCAPE_LOCAL_IMAGES"  # the repository prefix of the tags; tests use their own
DEFAULT_NAMESPACE = "mindscape-local"
DEBIAN_BASE_ESTIMATE = 100  # seconds: debootstrap of every package (~80 s) and its import (~15 s)

_TOP = {"version", "package", "estimate", "entrypoint", "cmd", "env", "user", "workdir", "expose"}
_TOP |= {"stop_signal", "volume", "go", "also"}
_GO = {"module", "package", "version", "release", "mode", "binary", "ldflags", "replace"}
_DEB = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_PORT = re.compile(r"^\d{1,5}(/(tcp|udp))?$")


def namespace() -> str:
    return os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class GoProgram:
    module: str
    package: str
    version: str  # the module version, v1.2.3
    mode: str = "install"  # install: `go install M/P@V`; tool: `go get -tool` in a module of ours
    release: str = ""  # the release this module version ships as, when it differs (Jaeger v2 is v1.x in Go)
    binary: str = ""  # where it lands in the image
    ldflags: str = ""  # added to -s -w
    replace: tuple[str, ...] = ()  # mode tool: the program's own replace lines, repeated in our module

    @property
    def target(self) -> str:
        return self.module if self.package == "." else f"{self.module}/{self.package}"


@dataclass(frozen=True)
class Recipe:
    service: str
    version: str
    data: dict[str, Any] = field(repr=False, compare=False)  # as read: what the image hash covers
    package: str = ""
    also: tuple[str, ...] = ()  # more Debian packages in the base for this image (tools it runs)
    go: GoProgram | None = None
    estimate: int = DEBIAN_BASE_ESTIMATE

    def tag(self, prefix: str | None = None) -> str:
        return f"{prefix or namespace()}/{self.service}:{self.version}"

    @property
    def source(self) -> str:
        return "go" if self.go else "debian"

    def image_hash(self, base_hash: str) -> str:
        """What this image is made of: the base (Debian rootfs and our files) and its own recipe,
        so changing one recipe rebuilds that image alone."""
        text = json.dumps({"base": base_hash, "recipe": self.data}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def config(self) -> dict[str, Any]:
        """The image config, as the engine's create call takes it."""
        d = self.data
        ports = [(int(p.split("/")[0]), p.split("/")[1]) if "/" in p else int(p) for p in d.get("expose", [])]
        return {
            "entrypoint": d.get("entrypoint"),
            "command": d.get("cmd"),
            "environment": d.get("env") or None,
            "user": d.get("user", ""),
            "working_dir": d.get("workdir"),
            "ports": ports or None,
            "stop_signal": d.get("stop_signal"),
        }


def load_recipes(folder: Path = RECIPES) -> dict[str, Recipe]:
    """Every recipe, by service; a bad one stops everything with its file and reason."""
    recipes = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise OperationFailed(f"recipe {path.name}: not valid TOML ({exc})") from None
        recipes[path.stem] = parse_recipe(path.stem, data, path.name)
    return recipes


def parse_recipe(service: str, data: dict[str, Any], where: str) -> Recipe:
    def bad(message: str) -> OperationFailed:
        return OperationFailed(f"recipe {where}: {message}", "fix the recipe; see the top of images/recipe.py")

    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}")
    version, package, go = data.get("version"), data.get("package"), data.get("go")
    if not isinstance(version, str) or not version:
        raise bad("`version` (the tag, a string) is required")
    if bool(package) == bool(go):
        raise bad("a recipe sets either `package` (Debian) or a [go] table, not both or neither")
    _check_config(data, bad)
    estimate = data.get("estimate", DEBIAN_BASE_ESTIMATE)
    if not isinstance(estimate, int) or isinstance(estimate, bool) or estimate <= 0:
        raise bad("`estimate` is seconds of a cold build on 2 cores, a positive integer")
    if package:
        if not isinstance(package, str):
            raise bad("`package` must be a Debian package name")
        also = data.get("also", [])
        if not isinstance(also, list) or not all(isinstance(a, str) and _DEB.match(a) for a in also):
            raise bad("`also` is a list of Debian package names")
        return Recipe(service, version, data, package=package, also=tuple(also), estimate=estimate)
    if "also" in data:
        raise bad("`also` adds Debian packages to a Debian recipe; a Go recipe has none")
    if not isinstance(go, dict):
        raise bad("[go] must be a table")
    return Recipe(service, version, data, go=_go_program(go, version, bad), estimate=estimate)


def _go_program(go: dict[str, Any], version: str, bad) -> GoProgram:
    unknown = sorted(set(go) - _GO)
    if unknown:
        raise bad(f"unknown key(s) in [go]: {', '.join(unknown)}")
    missing = [key for key in ("module", "package", "version") if not isinstance(go.get(key), str) or not go[key]]
    if missing:
        raise bad(f"a Go recipe sets module, package and version in [go] (missing: {', '.join(missing)})")
    mode = go.get("mode", "install")
    if mode not in ("install", "tool"):
        raise bad(f"[go] mode must be install or tool, not {mode!r}")
    replace = go.get("replace", [])
    if not isinstance(replace, list) or not all(isinstance(r, str) and "=" in r for r in replace):
        raise bad("[go] replace is a list of OLD=NEW@VERSION strings")
    release = go.get("release", "")
    shipped = release or go["version"]
    if shipped != f"v{version}" and not shipped.startswith(f"v{version}."):
        raise bad(f"{'release' if release else 'version'} {shipped} does not start with the tag {version}")
    program = go["module"] if go["package"] == "." else go["package"]
    binary = go.get("binary") or f"/usr/local/bin/{program.rsplit('/', 1)[-1]}"
    if not binary.startswith("/"):
        raise bad(f"[go] binary must be an absolute path in the image, not {binary!r}")
    return GoProgram(
        go["module"], go["package"], go["version"], mode, release, binary, go.get("ldflags", ""), tuple(replace)
    )


def _check_config(data: dict[str, Any], bad) -> None:
    for key in ("entrypoint", "cmd"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(a, str) for a in data[key])):
            raise bad(f"`{key}` is a list of strings")
    for key in ("user", "workdir", "stop_signal", "volume"):
        if key in data and not isinstance(data[key], str):
            raise bad(f"`{key}` is a string")
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise bad('[env] holds NAME = "value" strings')
    ports = data.get("expose", [])
    if not isinstance(ports, list) or not all(isinstance(p, str) and _PORT.match(p) for p in ports):
        raise bad('`expose` is a list of ports as strings: "9090", "514/udp"')


def debian_version_matches(tag: str, package_version: str) -> bool:
    """Does Debian's version of the package (5:7.0.15-1~deb12u7) carry the tag (7)?"""
    upstream = package_version.split(":", 1)[-1]
    return upstream == tag or upstream.startswith(f"{tag}.")
