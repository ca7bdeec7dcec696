"""One service's objects on Kubernetes, from the SAME ContainerSpec and probe `mindscape up`
and the compose export use: its workload (Deployment, StatefulSet or DaemonSet), Service,
PodDisruptionBudget and ConfigMaps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes.names import digest, dns, labels, meta, selector
from mindscape_ops.render.kubernetes.volumes import PodFiles, pod_files

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import ServiceDef
    from mindscape_ops.services.spec import ContainerSpec


STARTUP_S = 300  # how long a container may take to open its port before liveness counts


def probes(service: ServiceDef, spec: ContainerSpec) -> dict[str, dict[str, Any]]:
    """Readiness from the service's probe (its HTTP path, else the Docker healthcheck's command,
    else the port); liveness only asks whether the port answers, so a slow query never
    restarts a database."""
    timing = spec.healthcheck_timing
    common = {"periodSeconds": timing["interval_s"], "timeoutSeconds": timing["timeout_s"]}
    start = {"initialDelaySeconds": int(spec.start_period)} if spec.start_period else {}
    if service.probe.http is not None:
        check: dict[str, Any] = {"httpGet": {"path": service.probe.http.path, "port": spec.container_port}}
    elif spec.healthcheck:
        check = {"exec": {"command": exec_command(spec.healthcheck)}}
    else:
        check = {"tcpSocket": {"port": spec.container_port}}
    port = {"tcpSocket": {"port": spec.container_port}}
    return {
        "readinessProbe": {**check, **common, **start, "failureThreshold": timing["retries"]},
        "livenessProbe": {**port, **common, **start, "failureThreshold": timing["retries"] * 2},
        # liveness starts once the port answers: a first start (a volume to attach, Postgres'
        # initdb and its scripts, socket only) killed half way would leave a half-made database
        "startupProbe": {**port, **common, "failureThreshold": max(1, STARTUP_S // timing["interval_s"])},
    }


def exec_command(healthcheck: tuple[str, ...]) -> list[str]:
    """A Docker HEALTHCHECK test as an exec probe's command."""
    kind, *args = healthcheck
    return ["sh", "-c", args[0]] if kind == "CMD-SHELL" else list(args)


def escape(value: str) -> str:
    """Kubernetes expands $(VAR) in env values and args; $$ is a literal $."""
    return value.replace("$", "$$")


def environment(spec: ContainerSpec, secret: str, secret_env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The container's variables; one that names an owner_only mount (left out of a pod) is
    replaced by `secret_env` (the service's KubeShape.secret_env), by Secret reference."""
    unmounted = {m.target for m in spec.mounts if m.owner_only}
    kept = {k: v for k, v in spec.environment.items() if v not in unmounted}
    env: list[dict[str, Any]] = [{"name": k, "value": escape(v)} for k, v in kept.items()]
    for variable, key in {**spec.secrets, **(secret_env or {})}.items():
        env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def resources(platform: Platform, service: ServiceDef) -> dict[str, dict[str, str]]:
    chosen = platform.kubernetes.resources.get(service.name) if platform.kubernetes else None
    if chosen is not None:
        return chosen.model_dump()
    shape = service.kubernetes
    return {
        "requests": {"cpu": shape.cpu[0], "memory": shape.memory[0]},
        "limits": {"cpu": shape.cpu[1], "memory": shape.memory[1]},
    }


def container(platform: Platform, service: ServiceDef, spec: ContainerSpec, files: PodFiles, secret: str) -> dict:
    shape = service.kubernetes
    body: dict[str, Any] = {"name": dns(service.name), "image": spec.image}
    if spec.command:  # Docker's command replaces the image's CMD, as Kubernetes' args do
        body["args"] = [escape(arg) for arg in spec.command]
    env = environment(spec, secret, shape.secret_env)
    if env:
        body["env"] = env
    ports = [{"name": "main", "containerPort": spec.container_port, "protocol": "TCP"}]
    metrics = service.metrics.port if service.metrics and service.metrics.port != spec.container_port else None
    # a port is listed once: an extra port that is also the metrics port is named `metrics`
    extra = [port for port in sorted(spec.extra_ports) if port != metrics]
    ports += [{"name": f"port-{port}", "containerPort": port, "protocol": "TCP"} for port in extra]
    if service.metrics and metrics is not None:
        ports.append({"name": "metrics", "containerPort": service.metrics.port, "protocol": "TCP"})
    ports += [{"name": f"udp-{port}", "containerPort": port, "protocol": "UDP"} for port in shape.udp_ports]
    body["ports"] = ports
    body.update(probes(service, spec))
    body["resources"] = resources(platform, service)
    body["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": shape.read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if files.mounts:
        body["volumeMounts"] = files.mounts
    return body


def init_containers(platform: Platform, service: ServiceDef, main: dict[str, Any], secret: str) -> list[dict]:
    """Its KubeShape.init_steps, as hardened and bounded as its container; a step in the
    service's own image has its container's mounts (its config, its Secret's files)."""
    found = []
    for step in service.kubernetes.init_steps:
        body: dict[str, Any] = {
            "name": dns(step.name),
            "image": step.image(platform) if step.image else main["image"],
            "args": [escape(arg) for arg in step.args(platform)],
        }
        env: list[dict[str, Any]] = [{"name": k, "value": escape(v)} for k, v in step.environment(platform).items()]
        env += [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for k, key in step.secrets.items()
        ]
        if env:
            body["env"] = env
        body["resources"] = main["resources"]
        body["securityContext"] = main["securityContext"]
        if step.image is None and "volumeMounts" in main:
            body["volumeMounts"] = main["volumeMounts"]
        found.append(body)
    return found


def pod_template(platform: Platform, service: ServiceDef, spec: ContainerSpec, files: PodFiles, secret: str) -> dict:
    shape = service.kubernetes
    main = container(platform, service, spec, files, secret)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # no <SERVICE>_PORT variables: images read some of those names
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": shape.run_as,
            "runAsGroup": shape.run_as,
            "fsGroup": shape.run_as,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [main],
    }
    if shape.init_steps:
        pod["initContainers"] = init_containers(platform, service, main, secret)
    if files.volumes:
        pod["volumes"] = files.volumes
    return {
        # a changed config rolls the pods: the ConfigMaps keep their names
        "metadata": {
            "labels": labels(platform, service.name),
            "annotations": {"mindscape.io/config": digest(files.config_maps)},
        },
        "spec": pod,
    }


def service_objects(
    platform: Platform, service: ServiceDef, spec: ContainerSpec, rendered: dict[str, str], secret: str
):
    """(objects, PodFiles) of one service."""
    files = pod_files(platform, service, spec, rendered, secret)
    name, shape = dns(service.name), service.kubernetes
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(platform, cm, service.name), "data": data}
        for cm, data in files.config_maps.items()
    ]
    workload: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": shape.workload,
        "metadata": meta(platform, name, service.name),
        "spec": {"selector": {"matchLabels": selector(platform, service.name)}},
    }
    if shape.workload != "DaemonSet":
        workload["spec"]["replicas"] = 1
    workload["spec"]["template"] = pod_template(platform, service, spec, files, secret)
    if shape.workload == "StatefulSet":
        workload["spec"]["serviceName"] = name
        workload["spec"]["volumeClaimTemplates"] = [claim(platform, service.name)]
    ports = [
        {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": p["protocol"]}
        for p in workload["spec"]["template"]["spec"]["containers"][0]["ports"]
    ]
    objects.append(workload)
    service_meta = meta(platform, name, service.name)
    service_meta["labels"]["mindscape.io/job"] = service.name  # the scrape job (ServiceMonitor's jobLabel)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": service_meta,
            "spec": {"type": "ClusterIP", "selector": selector(platform, service.name), "ports": ports},
        }
    )
    if shape.workload != "DaemonSet":
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta(platform, name, service.name),
                # one voluntary eviction at a time; with one replica a drain may still move it
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(platform, service.name)}},
            }
        )
    return objects, files


def claim(platform: Platform, service: str) -> dict[str, Any]:
    storage = platform.kubernetes.storage_for(service)
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage.size}}}
    if storage.storage_class:
        spec["storageClassName"] = storage.storage_class
    return {"metadata": {"name": "data", "labels": labels(platform, service)}, "spec": spec}
