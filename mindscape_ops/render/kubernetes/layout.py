"""deploy/kubernetes/ as files: a Kustomize base (one file per service, the NetworkPolicies,
the ops Jobs, monitoring for the Prometheus Operator, the secret's source) and one overlay per
environment (its namespace, its replicas). `overlay` applies an overlay's changes in Python,
for `up --target kubernetes`; a test holds it equal to what `kustomize build` makes."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import yaml

from mindscape_ops.render.kubernetes.names import dns, labels, namespace

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

ENVIRONMENTS = ("development", "staging", "production")
CLUSTER_SCOPED = {"Namespace"}
SCALED = {"Deployment", "StatefulSet"}


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None  # config files stay readable in a ConfigMap
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def replicas(platform: Platform, environment: str, workloads: dict[str, str]) -> dict[str, int]:
    """Deployment/StatefulSet name -> replicas in this environment, when not 1."""
    chosen = platform.kubernetes.replicas.get(environment, {})
    return {dns(name): count for name, count in chosen.items() if workloads.get(dns(name)) in SCALED and count != 1}


def namespace_object(platform: Platform, environment: str) -> dict[str, Any]:
    meta_labels = {**labels(platform, "namespace"), "app.kubernetes.io/environment": environment}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace(platform, environment), "labels": meta_labels},
    }


def _changed(base: Any, own: Any) -> Any:
    """What of `own` differs from `base`: changed keys of a mapping, recursively; anything else whole."""
    if not (isinstance(base, dict) and isinstance(own, dict)):
        return own
    return {key: _changed(base.get(key), value) for key, value in own.items() if base.get(key) != value}


def patches(base: list[dict[str, Any]], own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strategic-merge patches turning the base's objects into an overlay's own (configs that
    name a Service in the overlay's namespace, and the config digest of the pods mounting them)."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in base}
    found = []
    for obj in own:
        original = by_name[(obj["kind"], obj["metadata"]["name"])]
        if original != obj:
            change = _changed(original, obj)
            change["metadata"] = {**change.get("metadata", {}), "name": obj["metadata"]["name"]}
            found.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"], **change})
    return found


PATCHES = "site.yaml"


def overlay_files(
    platform: Platform, environment: str, workloads: dict[str, str], changes: list[dict[str, Any]] = ()
) -> dict[str, str]:
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace(platform, environment),
        "resources": ["../../base", "namespace.yaml"],
    }
    scaled = replicas(platform, environment, workloads)
    if scaled:
        kustomization["replicas"] = [{"name": name, "count": count} for name, count in sorted(scaled.items())]
    files = {"namespace.yaml": dump([namespace_object(platform, environment)])}
    if changes:
        kustomization["patches"] = [{"path": PATCHES}]
        files[PATCHES] = dump(list(changes))
    return {"kustomization.yaml": dump([kustomization]), **files}


def overlay(platform: Platform, environment: str, base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The overlay's objects as kustomize builds them (the Namespace first)."""
    workloads = {o["metadata"]["name"]: o["kind"] for o in base if o["kind"] in SCALED}
    scaled = replicas(platform, environment, workloads)
    found = [namespace_object(platform, environment)]
    for obj in copy.deepcopy(base):
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace(platform, environment)
        for subject in obj.get("subjects", []) if obj["kind"] == "RoleBinding" else []:
            if subject["kind"] == "ServiceAccount":  # kustomize's namespace reaches these too
                subject["namespace"] = namespace(platform, environment)
        if obj["kind"] in SCALED and obj["metadata"]["name"] in scaled:
            obj["spec"]["replicas"] = scaled[obj["metadata"]["name"]]
        found.append(obj)
    return found


def base_kustomization(files: list[str], generator: dict[str, Any] | None) -> str:
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files,
    }
    if generator:
        kustomization["secretGenerator"] = [generator]
    return dump([kustomization])
