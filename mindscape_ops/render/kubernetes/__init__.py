"""The platform on Kubernetes: objects made as Python data from the same container specs,
probes and rendered configs as the Docker path, then written as a Kustomize base and overlays
(`render` with a `kubernetes:` section in platform.yaml) or applied (`up --target kubernetes`).
Imported only for those: the Docker path never loads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes import layout, monitoring, network, ops
from mindscape_ops.render.kubernetes.names import dns, namespace, secret_name
from mindscape_ops.render.kubernetes.secrets import SecretKeys, external_secret, generator, write_material
from mindscape_ops.render.kubernetes.workloads import service_objects

if TYPE_CHECKING:
    from pathlib import Path

    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.spec import ContainerSpec

FOLDER = "kubernetes"
IGNORED = ("base/secrets.env", "base/secret-files/")


@dataclass
class Base:
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # base file -> objects
    keys: SecretKeys = SecretKeys((), {})

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [obj for objects in self.files.values() for obj in objects]


def kube_specs(platform: Platform) -> dict[str, ContainerSpec]:
    """The specs of the services that run in the cluster: with the Prometheus Operator, what it
    stands in for (KubeShape.replaced_by_operator) does not."""
    from mindscape_ops.services.registry import BY_NAME
    from mindscape_ops.services.spec import container_specs

    specs = container_specs(platform)
    if platform.kubernetes.prometheus_operator:
        return {name: spec for name, spec in specs.items() if not BY_NAME[name].kubernetes.replaced_by_operator}
    return specs


def cluster_configs(platform: Platform, namespace: str | None = None) -> dict[str, str]:
    """The service configs as they run in the cluster: other services by their Service names
    (qualified with the namespace when it is known), the cluster's DNS server."""
    from mindscape_ops.render.artifacts import render_files
    from mindscape_ops.render.site import kubernetes

    return render_files(platform, site=kubernetes(platform, namespace))


def base(platform: Platform, rendered: dict[str, str], in_namespace: str | None = None) -> Base:
    """The base's objects (`in_namespace`: as the overlay for that namespace makes them). `rendered`:
    the Docker path's files, whose alert rules a PrometheusRule carries."""
    from mindscape_ops.services.registry import BY_NAME

    specs = kube_specs(platform)
    secret = secret_name(platform)
    configs = cluster_configs(platform, in_namespace) if rendered else {}
    for name in specs:
        scrape_config = BY_NAME[name].kubernetes.scrape_config
        if scrape_config:
            path = scrape_config.output(platform)
            configs[path] = monitoring.scrape_config(platform, specs, scrape_config.template, path)
    built = Base()
    values: set[str] = set()
    files: dict[str, str] = {}
    for name, spec in specs.items():
        objects, pod = service_objects(platform, BY_NAME[name], spec, configs, secret)
        built.files[f"{dns(name)}.yaml"] = objects
        values |= pod.secret_values
        files.update(pod.secret_files)
    ops_targets = ops.targets(platform, specs)
    values |= ops.secret_keys(specs)
    pod_exec = ops.pod_command_objects(platform, specs)
    built.files["ops.yaml"] = ops.objects(platform, specs, secret) + pod_exec
    if platform.kubernetes.network_policies.enabled:
        needs_s3 = ops.backs_up_to_s3(platform, specs)
        policies = network.policies(platform, specs, ops_targets)
        policies.append(network.ops_policy(platform, ops_targets, needs_s3))
        if pod_exec:
            policies.append(network.pod_exec_policy(platform))
        built.files["network-policies.yaml"] = policies
    if platform.kubernetes.prometheus_operator:
        built.files["monitoring.yaml"] = monitoring.operator_objects(platform, specs, rendered)
    built.keys = SecretKeys(tuple(sorted(values)), dict(sorted(files.items())))
    if platform.kubernetes.secrets.source == "external":
        built.files["external-secret.yaml"] = [external_secret(platform, built.keys)]
    return built


def kubernetes_files(platform: Platform, rendered: dict[str, str]) -> dict[str, str]:
    """deploy/kubernetes/...: path -> text (without the marker: the caller stamps it)."""
    built = base(platform, rendered)
    root = folder(platform)
    out = {
        f"{root}/.gitignore": "# the secretGenerator's input: passwords, never committed\n"
        + "".join(f"/{path}\n" for path in IGNORED)
    }
    out[f"{root}/{ops.CONTAINERFILE}"] = ops.containerfile(platform, kube_specs(platform), root)
    listed = [name for name, objects in built.files.items() if objects]
    generate = platform.kubernetes.secrets.source == "generate" and (built.keys.values or built.keys.files)
    out[f"{root}/base/kustomization.yaml"] = layout.base_kustomization(
        listed, generator(platform, built.keys) if generate else None
    )
    for name in listed:
        out[f"{root}/base/{name}"] = layout.dump(built.files[name])
    workloads = {o["metadata"]["name"]: o["kind"] for o in built.objects if o["kind"] in layout.SCALED}
    for environment in layout.ENVIRONMENTS:
        # what names another Service in the namespace (the gateway's upstream) differs per overlay
        own = base(platform, rendered, namespace(platform, environment)).objects
        patches = layout.patches(built.objects, own)
        for name, text in layout.overlay_files(platform, environment, workloads, patches).items():
            out[f"{root}/overlays/{environment}/{name}"] = text
    return out


def folder(platform: Platform) -> str:
    return f"{platform.paths.deploy}/{FOLDER}"


def prepare_cluster(root: Path, platform: Platform, secrets: dict[str, str]) -> list[str]:
    """With `kubernetes.secrets.source: generate`: base/secrets.env and base/secret-files/,
    git-ignored, owner-only (the keys are the same without the rendered configs). Returns
    warnings about addresses only Docker resolves."""
    keys = base(platform, {}).keys
    if platform.kubernetes.secrets.source == "generate":
        write_material(root, root / folder(platform) / "base", keys, secrets)
        return cluster_warnings(platform)
    return [*secret_to_create(platform, keys), *cluster_warnings(platform)]


def secret_to_create(platform: Platform, keys: SecretKeys) -> list[str]:
    """With an existing Secret: what to create before the pods can start (an ExternalSecret
    makes it from the store)."""
    if platform.kubernetes.secrets.source != "existing" or not (keys.values or keys.files):
        return []
    names = ", ".join(sorted({*keys.values, *keys.files}))
    # a file's key from the file `up` made for Docker (its path, never its content)
    files = "".join(f" --from-file={key}={source}" for key, source in sorted(keys.files.items()))
    return [
        f"kubernetes: the pods read Secret {secret_name(platform)} (kubernetes.secrets.source: existing); create it "
        f"in each overlay's namespace with the keys {names} (`kubectl create secret generic "
        f"{secret_name(platform)} -n NAMESPACE --from-literal=KEY=VALUE ...{files}`), or set "
        "kubernetes.secrets.source to external or generate"
    ]


DOCKER_HOST_NAME = "host.docker.internal"


def cluster_warnings(platform: Platform) -> list[str]:
    """Addresses on `host.docker.internal` (the Docker host) resolve nowhere in a cluster; and
    what each service says a user should know about it there."""
    from mindscape_ops.services.registry import SERVICES

    enabled = platform.services.enabled()
    running = [
        service.kubernetes
        for service in SERVICES
        if service.name in enabled
        and not (platform.kubernetes.prometheus_operator and service.kubernetes.replaced_by_operator)
    ]
    # once each: a scrape target with two addresses on the Docker host is one warning
    found = dict.fromkeys(
        what for shape in running for what, host in shape.outside_hosts(platform) if host == DOCKER_HOST_NAME
    )
    warnings = [
        f"kubernetes: {what} is on {DOCKER_HOST_NAME}, which a cluster does not resolve; give it the application's "
        "Service address in a platform file for the cluster (-f)"
        for what in found
    ]
    return warnings + [note for shape in running for note in shape.cluster_notes(platform)]


def cluster_objects(platform: Platform, root: Path, secrets: dict[str, str]) -> list[dict[str, Any]]:
    """What `up --target kubernetes` applies: the overlay of platform.environment as kustomize
    builds it, with the generated Secret (made from .mindscape/, never written to a file)."""
    from mindscape_ops.render.artifacts import render_files
    from mindscape_ops.render.kubernetes.secrets import contents, secret_object

    built = base(platform, render_files(platform), namespace(platform, platform.environment))
    objects = layout.overlay(platform, platform.environment, built.objects)
    if platform.kubernetes.secrets.source == "generate" and (built.keys.values or built.keys.files):
        secret = secret_object(platform, built.keys, contents(root, built.keys, secrets))
        secret["metadata"]["namespace"] = namespace(platform, platform.environment)
        objects.insert(1, secret)  # after the Namespace, before anything that reads it
    return objects
