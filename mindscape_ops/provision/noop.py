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
import logging
import os
import re
from pathlib import Path
from typing import Any

from mindscape_ops import __version__
from mindscape_ops.provision.proof import PROOF_KEY, holds
from mindscape_ops.provision.proof import read as read_proofs
from mindscape_ops.render.resources import code_and_templates_digest

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
CACHE_KEY = "up_cache"
log = logging.getLogger("mindscape")


def input_key(
    files: list[Path],
    options: dict[str, Any],
    env_names: list[str],
    mounts: list[str],
    state: dict[str, Any] | None = None,
) -> tuple[str, Path] | None:
    """The key over every input of a no-op `up`, and the project root; None if a file is unreadable.
    `state`: state.json as already read by the caller (it is read here otherwise)."""
    from mindscape_ops.adapters.files import content_digest
    from mindscape_ops.workspace.store import DIRNAME, Workspace

    digest = hashlib.sha256(json.dumps([__version__, options], sort_keys=True).encode())
    texts = []
    try:
        for path in files:
            data = path.read_bytes()
            texts.append(data.decode("utf-8", "replace"))
            digest.update(str(path.resolve()).encode() + b"\0" + data)
        root = files[0].resolve().parent
        names = {*env_names, *(n for text in texts for n in _VAR_RE.findall(text))}
        names |= {n for n in os.environ if n.startswith("DOCKER_")}
        digest.update(json.dumps({name: os.environ.get(name) for name in sorted(names)}).encode())
        digest.update((root / DIRNAME / "secrets.env").read_bytes())
        state = dict(state) if state is not None else Workspace(root).read_state()
        for path in sorted(state.get("manifest", {})):
            digest.update(path.encode() + b"\0" + (root / path).read_bytes())
    except OSError:
        return None
    # What containers mount: whole folders (a user's extra rule file too) and derived secret files.
    for source in sorted(mounts):
        digest.update(source.encode() + b"\0" + content_digest(root, source).encode())
    state.pop(CACHE_KEY, None)
    state.pop(PROOF_KEY, None)  # proofs are checked against the containers themselves
    digest.update(json.dumps(state, sort_keys=True).encode())
    digest.update(code_and_templates_digest().encode())
    return digest.hexdigest(), root


def remember(root: Path, files: list[Path], options: dict[str, Any], facts: dict[str, Any]) -> None:
    """After a successful full `up`: what the engine should show next time, under the key.
    `facts`: env_names, mounts, project, services (hash, image, image_id, healthcheck, probe)."""
    from mindscape_ops.workspace.store import Workspace

    computed = input_key(files, options, facts["env_names"], facts["mounts"])
    if computed is not None:
        Workspace(root).update_state(**{CACHE_KEY: {"key": computed[0], **facts}})


def cached(files: list[Path], options: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """What the last full `up` with these options remembered, when nothing it depends on has
    moved since (else None), and the state read on the way."""
    from mindscape_ops.workspace.store import Workspace

    state = Workspace(files[0].resolve().parent).read_state()
    cache = state.get(CACHE_KEY)
    try:
        computed = input_key(files, options, list(cache["env_names"]), list(cache["mounts"]), state)
    except (KeyError, TypeError, AttributeError):
        return None, state  # no cache, or one written by another version: the full path decides
    if computed is None or computed[0] != cache["key"]:
        log.debug("no-op: an input changed since the last full up (or none was recorded)")
        return None, state
    return cache, state


def try_noop(files: list[Path], options: dict[str, Any]) -> list[str] | None:
    """The services found unchanged and ready, or None when the full `up` must run."""
    cache, state = cached(files, options)
    if cache is None:
        return None
    try:
        return _engine_agrees(cache["project"], cache["services"], read_proofs(state))
    except (KeyError, TypeError, AttributeError):
        return None


def _engine_agrees(
    project: str, services: dict[str, dict[str, Any]], proofs: dict[str, dict[str, str]]
) -> list[str] | None:
    from mindscape_ops.adapters.engine_socket import reader
    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.provision.convergence import LABEL_CONFIG_HASH

    try:
        engine = reader()  # the light client: no Docker SDK on this path
        observed = engine.containers(project)
        image_ids = engine.image_ids(sorted({s["image"] for s in services.values()}))
    except MindscapeError:
        return None  # the full path says what is wrong, properly
    if set(observed) != set(services):
        log.debug("no-op: the containers are not the services the last up left")
        return None
    for name, expected in services.items():
        seen = observed[name]
        if (
            not seen.running
            or image_ids.get(expected["image"]) != expected["image_id"]
            or seen.labels.get(LABEL_CONFIG_HASH) != expected["hash"]
            or not _ready(engine, seen, expected, proofs.get(name))
        ):
            log.debug("no-op: %s is not as the last up left it (stopped, changed or not ready)", name)
            return None
    return list(services)


def _ready(engine: Any, seen: Any, expected: dict[str, Any], proved: dict[str, str] | None) -> bool:
    """Docker's healthcheck once it has spoken; else the proof `up` left for this very start
    of the container (provision/proof.py); else the same probe `up` makes (the no-op path
    only keeps probes that need no heavy client: http)."""
    if seen.health in ("healthy", "unhealthy"):
        return seen.health == "healthy"
    if holds(engine, seen, proved):
        return True
    if expected["healthcheck"]:
        return False  # Docker still says starting and nothing proved this start: the full path probes
    probe = expected.get("probe")
    return probe_http(probe) and http_ready(probe)


def probe_http(probe: Any) -> bool:
    return isinstance(probe, dict) and probe.get("kind") == "http"


def http_ready(probe: dict[str, Any]) -> bool:
    from mindscape_ops.services.contract import NotReady, check_http

    try:
        check_http(probe["host"], probe["port"], probe["path"], probe["expect"])
    except NotReady:
        return False
    return True
