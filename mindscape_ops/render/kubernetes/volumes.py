"""Where each mount of a ContainerSpec comes from on Kubernetes: a rendered file or folder
becomes a ConfigMap holding that same text; a file from .mindscape/ (a password, a verifier,
an ACL) becomes a key of the platform's Secret; a host path stays a read-only hostPath; the
data volume is a PersistentVolumeClaim (StatefulSet) or an emptyDir."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes.names import dns, slug
from mindscape_ops.services.spec import SECRETS_ON_HOST

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import ServiceDef
    from mindscape_ops.services.spec import ContainerSpec, Mount

WORKSPACE = ".mindscape/"


def secret_key(source: str) -> str:
    """The Secret's key for a project file: the password's own name for .mindscape/secrets/KEY
    (the key of secrets.env), else the path without .mindscape/, slashes as dashes."""
    if source.startswith(SECRETS_ON_HOST + "/"):
        return posixpath.basename(source)
    rel = source[len(WORKSPACE) :] if source.startswith(WORKSPACE) else source
    return rel.strip("/").replace("/", "-")


def config_key(rel: str) -> str:
    """A ConfigMap key for a file in a mounted folder (keys cannot hold `/`)."""
    return rel.replace("/", "--")


@dataclass
class PodFiles:
    """The volumes and mounts of one pod, and the ConfigMaps and Secret keys they need."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> key -> text
    secret_files: dict[str, str] = field(default_factory=dict)  # Secret key -> project file
    secret_values: set[str] = field(default_factory=set)  # keys of secrets.env it reads

    def add(self, volume: dict[str, Any], mount_path: str, sub_path: str | None = None, read_only: bool = True):
        name = f"v{len(self.volumes)}-{slug(mount_path)}"[:63].rstrip("-")
        self.volumes.append({"name": name, **volume})
        mount = {"name": name, "mountPath": mount_path, "readOnly": read_only}
        if sub_path:
            mount["subPath"] = sub_path
        self.mounts.append(mount)


def pod_files(
    platform: Platform, service: ServiceDef, spec: ContainerSpec, rendered: dict[str, str], secret: str
) -> PodFiles:
    shape = service.kubernetes
    files = PodFiles()
    folders = shape.workspace_files(platform)
    configs = shape.config_folders(platform)
    for mount in spec.mounts:
        if mount.owner_only:  # a Secret's file cannot be given an owner: shape.secret_env instead
            continue
        if mount.docker_only:
            continue
        if mount.host and mount.source == "/":  # the node's own filesystem (node_exporter)
            files.add({"hostPath": {"path": mount.source, "type": "Directory"}}, mount.target)
        elif mount.live:  # written at run time on the machine running mindscape: empty in a pod
            files.add({"emptyDir": {}}, mount.target)
        elif mount.source.startswith(platform.paths.deploy.rstrip("/") + "/"):
            _config(files, service, mount, rendered)
        elif mount.source in folders:
            _secret_folder(files, mount, folders[mount.source], secret)
        elif mount.source in configs:
            _workspace_config(files, service, mount, configs[mount.source], folders, secret)
        else:
            key = secret_key(mount.source)
            if mount.source.startswith(SECRETS_ON_HOST + "/"):
                files.secret_values.add(key)
            else:
                files.secret_files[key] = mount.source
            name = posixpath.basename(mount.target)
            volume = {"secret": {"secretName": secret, "items": [{"key": key, "path": name}], "defaultMode": 0o440}}
            files.add(volume, mount.target, sub_path=name)
    files.secret_values |= set(spec.secrets.values()) | set(shape.secret_env.values())
    files.secret_values |= {key for step in shape.init_steps for key in step.secrets.values()}
    if spec.volume_target and shape.workload != "StatefulSet":
        files.add({"emptyDir": {}}, spec.volume_target, read_only=False)
    elif spec.volume_target:
        files.mounts.append({"name": "data", "mountPath": spec.volume_target})
    if shape.read_only_root:
        for path in shape.writable:
            files.add({"emptyDir": {}}, path, read_only=False)
    return files


def _config(files: PodFiles, service: ServiceDef, mount: Mount, rendered: dict[str, str]) -> None:
    name = f"{dns(service.name)}-{slug(mount.target)}"[:63].rstrip("-")
    if mount.source in rendered:  # one file, over its path in the image (the folder keeps the rest)
        key = posixpath.basename(mount.source)
        files.config_maps[name] = {key: rendered[mount.source]}
        files.add({"configMap": {"name": name, "items": [{"key": key, "path": key}]}}, mount.target, sub_path=key)
        return
    prefix = mount.source.rstrip("/") + "/"
    inside = {path[len(prefix) :]: text for path, text in sorted(rendered.items()) if path.startswith(prefix)}
    files.config_maps[name] = {config_key(rel): text for rel, text in inside.items()}
    items = [{"key": config_key(rel), "path": rel} for rel in inside]
    files.add({"configMap": {"name": name, "items": items}}, mount.target)


def _workspace_config(
    files: PodFiles,
    service: ServiceDef,
    mount: Mount,
    texts: dict[str, str],
    folders: dict[str, tuple[str, ...]],
    secret: str,
) -> None:
    """A .mindscape/ folder of configs without secrets (KubeShape.config_folders): a ConfigMap,
    and each subfolder workspace_files names from the Secret, projected into one volume at its
    target. One volume: a mount inside a ConfigMap's volume (read-only) cannot be made."""
    name = f"{dns(service.name)}-{slug(mount.target)}"[:63].rstrip("-")
    files.config_maps[name] = dict(sorted(texts.items()))
    sources: list[dict[str, Any]] = [
        {"configMap": {"name": name, "items": [{"key": key, "path": key} for key in sorted(texts)]}}
    ]
    prefix = mount.source.rstrip("/") + "/"
    items = []
    for folder, names in sorted(folders.items()):
        if folder.startswith(prefix):
            for file_name in names:
                source = f"{folder}/{file_name}"
                files.secret_files[secret_key(source)] = source
                items.append({"key": secret_key(source), "path": f"{folder[len(prefix) :]}/{file_name}"})
    if items:
        sources.append({"secret": {"name": secret, "items": items}})
    files.add({"projected": {"sources": sources, "defaultMode": 0o440}}, mount.target)


def _secret_folder(files: PodFiles, mount: Mount, names: tuple[str, ...], secret: str) -> None:
    if not names:  # nothing in it on this platform (postgres' initdb without pgbouncer)
        return
    items = []
    for file_name in names:
        source = f"{mount.source.rstrip('/')}/{file_name}"
        key = secret_key(source)
        files.secret_files[key] = source
        items.append({"key": key, "path": file_name})
    files.add({"secret": {"secretName": secret, "items": items, "defaultMode": 0o440}}, mount.target)
