"""The platform's one Secret on a cluster, never written into a rendered file.

Its keys: each password a pod reads (the keys of .mindscape/secrets.env) and each file a pod
mounts from .mindscape/ (Redis' ACL, pgbouncer's verifier, Postgres' init script, receivers'
secrets), as `secret_key` names them. `kubernetes.secrets.source` says where they come from:
`generate`: kustomize's secretGenerator reads base/secrets.env and base/secret-files/, which
`write_material` fills from .mindscape/ (mode 0600, git-ignored by the rendered .gitignore);
`existing`: a Secret made by hand with those keys; `external`: an ExternalSecret asking the
External Secrets Operator to make it from a secret store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes.names import meta, secret_name

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

ENV_FILE = "secrets.env"
FILES_DIR = "secret-files"


@dataclass(frozen=True)
class SecretKeys:
    values: tuple[str, ...]  # keys of secrets.env
    files: dict[str, str]  # Secret key -> project-relative file under .mindscape/


def generator(platform: Platform, keys: SecretKeys) -> dict[str, Any]:
    """The base kustomization's secretGenerator entry. No hash suffix: `up` applies the same
    objects without kustomize, and so must name the Secret the same way."""
    entry: dict[str, Any] = {"name": secret_name(platform), "options": {"disableNameSuffixHash": True}}
    if keys.values:
        entry["envs"] = [ENV_FILE]
    if keys.files:
        entry["files"] = [f"{key}={FILES_DIR}/{key}" for key in sorted(keys.files)]
    return entry


def external_secret(platform: Platform, keys: SecretKeys) -> dict[str, Any]:
    settings = platform.kubernetes.secrets
    return {
        # v1 since External Secrets Operator 0.16.2; 0.17 and later serve no v1beta1
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": meta(platform, secret_name(platform), "secrets", "secrets"),
        "spec": {
            "refreshInterval": settings.refresh,
            "secretStoreRef": {"name": settings.store, "kind": settings.store_kind},
            "target": {"name": secret_name(platform), "creationPolicy": "Owner"},
            "data": [
                {"secretKey": key, "remoteRef": {"key": f"{settings.key_prefix}{key}"}}
                for key in sorted({*keys.values, *keys.files})
            ],
        },
    }


def contents(root: Path, keys: SecretKeys, secrets: dict[str, str]) -> dict[str, str]:
    """Key -> value, from secrets.env and the files under .mindscape/ (missing ones empty)."""
    found = {key: secrets.get(key, "") for key in keys.values}
    for key, source in keys.files.items():
        try:
            found[key] = (root / source).read_text()
        except OSError:
            found[key] = ""
    return found


def write_material(root: Path, base: Path, keys: SecretKeys, secrets: dict[str, str]) -> None:
    """What the secretGenerator reads, written only when it changed, owner-only."""
    from mindscape_ops.adapters.files import write_if_changed

    values = contents(root, keys, secrets)
    env = "".join(f"{key}={values[key]}\n" for key in keys.values)
    write_if_changed(base / ENV_FILE, env, mode=0o600)
    for key in keys.files:
        write_if_changed(base / FILES_DIR / key, values[key], mode=0o600)
    folder = base / FILES_DIR
    for stale in folder.iterdir() if folder.is_dir() else ():
        if stale.is_file() and stale.name not in keys.files:  # a key the platform no longer has
            stale.unlink()


def secret_object(platform: Platform, keys: SecretKeys, values: dict[str, str]) -> dict[str, Any]:
    """The Secret the generator makes, for `up --target kubernetes` (applied, never written)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": secret_name(platform)},
        "stringData": dict(sorted(values.items())),
    }
