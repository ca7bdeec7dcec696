"""The no-op `up`: when nothing `up` depends on has moved since the last successful run and
the engine still shows every container as it was left, answer without loading the model.

Validation, rendering and planning are pure functions of their inputs, so their result is
remembered under a key over every input: the platform files, the environment variables they
read, the secrets, the state, the generated files on disk, the templates, our version. The
engine is still asked (one listing of containers, one of images): a container that died, was
recreated by hand or whose image tag moved sends `up` down the full path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from . import __version__
from .resources import code_and_templates_digest

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
CACHE_KEY = "up_cache"


def input_key(files: list[Path], options: dict[str, Any], env_names: list[str]) -> tuple[str, Path] | None:
    """The key over every input of a no-op `up`, and the project root; None if a file is unreadable."""
    digest = hashlib.sha256(json.dumps([__version__, options], sort_keys=True).encode())
    texts = []
    try:
        for path in files:
            data = path.read_bytes()
            texts.append(data.decode("utf-8", "replace"))
            digest.update(str(path.resolve()).encode() + b"\0" + data)
    except OSError:
        return None
    root = files[0].resolve().parent
    names = sorted(
        {
            *env_names,
            *(n for text in texts for n in _VAR_RE.findall(text)),
            *(n for n in os.environ if n.startswith("DOCKER_")),
        }
    )
    digest.update(json.dumps({name: os.environ.get(name) for name in names}).encode())
    workspace = root / ".mindscape"
    try:
        digest.update((workspace / "secrets.env").read_bytes())
        state = json.loads((workspace / "state.json").read_text())
        for path in sorted(state.get("manifest", {})):
            digest.update(path.encode() + b"\0" + (root / path).read_bytes())
    except (OSError, ValueError):
        return None
    state.pop(CACHE_KEY, None)
    digest.update(json.dumps(state, sort_keys=True).encode())
    digest.update(code_and_templates_digest().encode())
    return digest.hexdigest(), root


def remember(
    root: Path,
    files: list[Path],
    options: dict[str, Any],
    env_names: list[str],
    project: str,
    services: dict[str, dict[str, Any]],
) -> None:
    """After a successful full `up`: what the engine should show next time, under the key."""
    from .workspace import Workspace

    workspace = Workspace(root)
    computed = input_key(files, options, env_names)
    if computed is not None:
        workspace.update_state(
            **{CACHE_KEY: {"key": computed[0], "env_names": env_names, "project": project, "services": services}}
        )


def try_noop(files: list[Path], options: dict[str, Any]) -> list[str] | None:
    """The services found unchanged and healthy, or None when the full `up` must run."""
    try:
        state = json.loads((files[0].resolve().parent / ".mindscape" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    cache = state.get(CACHE_KEY)
    if not isinstance(cache, dict):
        return None
    computed = input_key(files, options, cache.get("env_names", []))
    if computed is None or computed[0] != cache.get("key"):
        return None
    return _engine_agrees(cache["project"], cache["services"])


def _engine_agrees(project: str, services: dict[str, dict[str, Any]]) -> list[str] | None:
    from .errors import MindscapeError
    from .runtime.docker import Engine

    try:
        engine = Engine(ping=False)
        observed = engine.containers(project)
        image_ids = engine.image_ids(sorted({s["image"] for s in services.values()}))
    except MindscapeError:
        return None  # the full path says what is wrong, properly
    if set(observed) != set(services):
        return None
    for name, expected in services.items():
        seen = observed[name]
        healthy = seen.health == "healthy" if expected["healthcheck"] else True
        if (
            not seen.running
            or not healthy
            or image_ids.get(expected["image"]) != expected["image_id"]
            or seen.labels.get("io.mindscape.config-hash") != expected["hash"]
        ):
            return None
    return list(services)
