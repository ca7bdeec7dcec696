"""The only module that imports the official `kubernetes` client: server-side apply of the
platform's objects to one kubeconfig context, under one field manager, optionally as a
server-side dry run. Its errors are translated once, here, into advice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mindscape_ops.errors import EnvironmentUnusable, OperationFailed

REQUEST_TIMEOUT_S = 30


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def connect(context: str | None, config_file: str | None = None):
    """A dynamic client for `context` (the kubeconfig's current one when None)."""
    import urllib3
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.dynamic import DynamicClient

    where = f"context {context}" if context else "the current context"
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=config_file, context=context, client_configuration=configuration)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise EnvironmentUnusable(
            f"no Kubernetes cluster for {where}: {_first_line(exc)}",
            "point KUBECONFIG at a kubeconfig, and pass --context NAME from `kubectl config get-contexts`",
        ) from None
    configuration.retries = 1  # urllib3's: an unreachable API fails in seconds, not minutes
    try:
        return DynamicClient(client.ApiClient(configuration=configuration))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise EnvironmentUnusable(
            f"cannot reach the Kubernetes API at {configuration.host} ({where}): {_reason(exc)}",
            "is the cluster running and the kubeconfig's server address right? (`kubectl cluster-info`)",
        ) from None
    except client.exceptions.ApiException as exc:
        raise EnvironmentUnusable(
            f"the Kubernetes API at {configuration.host} refused discovery: {exc.status} {exc.reason}",
            "check the kubeconfig's credentials (`kubectl auth whoami`)",
        ) from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return _first_line(reason if isinstance(reason, BaseException) else exc)


def _resource(dynamic: Any, obj: dict[str, Any]) -> Any:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    kind = obj["kind"]
    try:
        return dynamic.resources.get(api_version=obj["apiVersion"], kind=kind)
    except ResourceNotFoundError:
        raise OperationFailed(
            f"the cluster does not know {kind} ({obj['apiVersion']}), needed by {kind}/{obj['metadata']['name']}",
            "install its operator (Prometheus Operator, External Secrets) or switch it off in platform.yaml's "
            "kubernetes: section (nothing was applied)",
        ) from None


def apply(
    dynamic: Any,
    objects: list[dict[str, Any]],
    field_manager: str,
    dry_run: bool = False,
    report: Callable[[str], None] = lambda line: None,
) -> int:
    """Server-side apply each object in order (the Namespace first) through `connect`'s client;
    returns how many. Every kind is looked up first, so a cluster missing one changes nothing.
    Conflicts with other managers are forced: platform.yaml is the source of truth here."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError

    resources = [_resource(dynamic, obj) for obj in objects]
    for resource, obj in zip(resources, objects, strict=True):
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            resource.server_side_apply(
                body=obj,
                name=name,
                namespace=obj["metadata"].get("namespace"),
                field_manager=field_manager,
                force_conflicts="true",  # as the API spells it (the client would send `True`)
                dry_run="All" if dry_run else None,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except (DynamicApiError, ApiException) as exc:
            status = getattr(exc, "status", "?")
            summary = exc.summary() if isinstance(exc, DynamicApiError) else _first_line(exc)
            raise OperationFailed(f"{kind}/{name}: the API refused it ({status}): {summary}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise EnvironmentUnusable(f"lost the Kubernetes API while applying {kind}/{name}: {_reason(exc)}") from None
        report(f"{kind}/{name}")
    return len(objects)


# -- exec in a pod from inside the cluster (the pod-exec CronJobs: `python3 -m` this module) -------

NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def exec_in_pod(pod: str, container: str, argv: list[str], out=None, err=None) -> int:
    """Run `argv` in `container` of `pod` (this pod's namespace) with this pod's ServiceAccount,
    its output copied as it comes; returns its exit status."""
    import sys

    from kubernetes import client, config
    from kubernetes.stream import stream

    out, err = out or sys.stdout, err or sys.stderr
    config.load_incluster_config()
    with open(NAMESPACE_FILE) as handle:
        namespace = handle.read().strip()
    session = stream(
        client.CoreV1Api().connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=argv,
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    while True:
        running = session.is_open()
        if running:
            session.update(timeout=60)
        if session.peek_stdout():
            out.write(session.read_stdout())
            out.flush()
        if session.peek_stderr():
            err.write(session.read_stderr())
            err.flush()
        if not running:  # what came before the end is copied too
            break
    session.close()
    return session.returncode if session.returncode is not None else 1


def main(args: list[str]) -> int:
    """`exec POD CONTAINER -- COMMAND...`: the exit status is the command's; an API error one line."""
    import sys

    if len(args) < 5 or args[0] != "exec" or args[3] != "--":
        print("usage: python3 -m mindscape_ops.adapters.kubernetes exec POD CONTAINER -- COMMAND...", file=sys.stderr)
        return 2
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:
        return exec_in_pod(args[1], args[2], args[4:])
    except (ApiException, ConfigException, OSError) as exc:
        print(f"exec in pod {args[1]} failed: {_first_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
