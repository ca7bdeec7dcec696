"""The Docker SDK adapter: the only module that talks to the engine.

A narrow surface (find by label, image, network, volume, create, start, remove, logs),
with engine errors translated once into advice, as docker compose's cli/errors.py does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import requests.exceptions

from mindscape_ops.adapters import engine_rows
from mindscape_ops.adapters.engine_rows import Observed
from mindscape_ops.adapters.exec_stream import KEEP, ExecOutput, ExecResult
from mindscape_ops.adapters.labels import LABEL_PROJECT
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed

BUILD_HINT = (
    "build it here with `mindscape images build SERVICE` (no registry needed; `mindscape images list` names "
    "the recipes), or set `image:` to one you have"
)


def _engine_hint() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return (
        f"is the Docker engine running? DOCKER_HOST={host}; start it (`sudo systemctl start docker`, "
        "or `sudo dockerd &`), or point DOCKER_HOST at a running engine"
    )


@contextlib.contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Translate engine failures into user-facing errors."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise EnvironmentUnusable(f"{doing}: image not found ({exc.explanation})", BUILD_HINT) from None
    except docker.errors.APIError as exc:
        raise OperationFailed(f"{doing}: the Docker engine refused: {exc.explanation or exc}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EnvironmentUnusable(f"{doing}: cannot reach the Docker engine ({_short(exc)})", _engine_hint()) from None


def _short(exc: BaseException) -> str:
    """The engine's reason in one line; a long one keeps its end, where the cause is said
    ("... Connection refused"), rather than its start."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 240 else f"{text[:80]} ... {text[-150:]}"


@dataclass(frozen=True)
class ContainerRequest:
    """Everything needed to create one container (made by provision/desired.py from a container spec)."""

    name: str
    image: str
    command: list[str] | None
    user: str | None
    environment: dict[str, str]
    labels: dict[str, str]
    network: str
    alias: str
    container_port: int
    bind: str
    host_port: int
    binds: dict[str, dict[str, str]]
    healthcheck: dict[str, Any] | None
    extra_hosts: dict[str, str]
    log_options: dict[str, str]
    log_driver: str = "json-file"
    extra_ports: Mapping[int, int] = field(default_factory=dict)  # container port -> host port, on `bind`


class Engine:
    def __init__(self, timeout: int = 60, ping: bool = True) -> None:
        with engine_errors("connecting"):
            self.client = docker.from_env(timeout=timeout)
            if ping:
                self.client.ping()
        self.api = self.client.api

    # -- finding -------------------------------------------------------------------------

    def containers(self, project: str) -> dict[str, Observed]:
        """This project's containers by service (one request: no per-container inspect)."""
        with engine_errors("listing containers"):
            rows = self.api.containers(all=True, filters={"label": f"{LABEL_PROJECT}={project}"})
        return engine_rows.observed(rows)

    def names_labelled(self, label: str, value: str) -> list[str]:
        """The names of the containers (running or not) whose `label` is `value`."""
        with engine_errors("listing containers"):
            rows = self.api.containers(all=True, filters={"label": f"{label}={value}"})
        return [name.lstrip("/") for row in rows for name in (row.get("Names") or [])[:1]]

    def container_by_name(self, name: str) -> dict[str, Any] | None:
        with engine_errors(f"inspecting {name}"):
            try:
                return self.api.inspect_container(name)
            except docker.errors.NotFound:
                return None

    def publishers_of(self, port: int) -> list[str]:
        """Names of running containers publishing `port` on the host."""
        with engine_errors("listing containers"):
            rows = self.api.containers(filters={"publish": str(port)})
        return [row["Names"][0].lstrip("/") for row in rows]

    # -- images --------------------------------------------------------------------------

    def image_ids(self, refs: list[str]) -> dict[str, str | None]:
        """Ids of these images (None when absent), from one listing rather than one call each."""
        with engine_errors("listing images"):
            rows = self.api.images()
        found = engine_rows.image_ids_by_tag(rows, refs)
        for ref, image in found.items():
            if image is None:  # digests, short names, other spellings: ask the engine itself
                found[ref] = self.image_id(ref)
        return found

    def image_id(self, ref: str) -> str | None:
        with engine_errors(f"inspecting image {ref}"):
            try:
                return self.api.inspect_image(ref)["Id"]
            except docker.errors.ImageNotFound:
                return None

    def pull(self, ref: str, progress: Callable[[str], None]) -> str:
        repository, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
        try:
            layers: dict[str, str] = {}
            for event in self.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise docker.errors.APIError(event["error"])
                if event.get("id") and event.get("status"):
                    layers[event["id"]] = event["status"]
                    done = sum(1 for s in layers.values() if s in ("Pull complete", "Already exists"))
                    progress(f"pulling {done}/{len(layers)} layers")
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EnvironmentUnusable(
                f"image {ref} is not on this machine and cannot be pulled ({_short(exc)})", BUILD_HINT
            ) from None
        image = self.image_id(ref)
        if image is None:
            raise EnvironmentUnusable(f"image {ref} could not be pulled", BUILD_HINT)
        return image

    # -- network and volumes -----------------------------------------------------------------

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        with engine_errors(f"creating network {name}"):
            if not self.api.networks(names=[name]):
                self.api.create_network(name, driver="bridge", labels=dict(labels), check_duplicate=True)

    def remove_network(self, name: str) -> bool:
        with engine_errors(f"removing network {name}"):
            networks = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            for network in networks:
                self.api.remove_network(network["Id"])
            return bool(networks)

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        with engine_errors(f"creating volume {name}"):
            try:
                self.api.inspect_volume(name)
            except docker.errors.NotFound:
                self.api.create_volume(name, labels=dict(labels))

    def volumes(self, project: str) -> dict[str, int | None]:
        """This project's volumes and their sizes in bytes (None when the engine does not say)."""
        with engine_errors("listing volumes"):
            listed = self.api.volumes(filters={"label": f"{LABEL_PROJECT}={project}"}).get("Volumes") or []
            names = {v["Name"] for v in listed}
            sizes: dict[str, int | None] = dict.fromkeys(names)
            if names:
                for volume in self.api.df().get("Volumes") or []:
                    if volume["Name"] in names:
                        size = (volume.get("UsageData") or {}).get("Size", -1)
                        sizes[volume["Name"]] = size if size >= 0 else None
        return sizes

    def volume_labels(self, project: str) -> dict[str, dict[str, str]]:
        """This project's volumes and their labels."""
        with engine_errors("listing volumes"):
            listed = self.api.volumes(filters={"label": f"{LABEL_PROJECT}={project}"}).get("Volumes") or []
        return {v["Name"]: dict(v.get("Labels") or {}) for v in listed}

    def published_port(self, container: str, container_port: int) -> int | None:
        """The host port a container publishes `container_port` on (None: no such container,
        or not published)."""
        details = self.container_by_name(container)
        ports = (details or {}).get("NetworkSettings", {}).get("Ports") or {}
        for binding in ports.get(f"{container_port}/tcp") or []:
            if str(binding.get("HostPort", "")).isdigit():
                return int(binding["HostPort"])
        return None

    def remove_volume(self, name: str) -> None:
        with engine_errors(f"removing volume {name}"):
            self.api.remove_volume(name)

    # -- containers --------------------------------------------------------------------------

    def create(self, request: ContainerRequest) -> str:
        api = self.api
        with engine_errors(f"creating {request.name}"):
            host_config = api.create_host_config(
                port_bindings={
                    request.container_port: (request.bind, request.host_port),
                    **{port: (request.bind, host) for port, host in request.extra_ports.items()},
                },
                binds=request.binds,
                extra_hosts=request.extra_hosts or None,
                init=False,
                log_config={"Type": request.log_driver, "Config": request.log_options},
            )
            networking = api.create_networking_config(
                {request.network: api.create_endpoint_config(aliases=[request.alias])}
            )
            created = api.create_container(
                request.image,
                command=request.command,
                name=request.name,
                environment=request.environment,
                labels=request.labels,
                ports=[request.container_port, *request.extra_ports],
                host_config=host_config,
                networking_config=networking,
                healthcheck=request.healthcheck,
                user=request.user or "",
            )
        return created["Id"]

    def start(self, container: str) -> None:
        with engine_errors(f"starting {container}"):
            self.api.start(container)

    def stop(self, container: str, stop_timeout: int = 10) -> None:
        with engine_errors(f"stopping {container}"), contextlib.suppress(docker.errors.NotFound):
            self.api.stop(container, timeout=stop_timeout)

    def rename(self, container: str, name: str) -> None:
        with engine_errors(f"renaming {container} to {name}"):
            self.api.rename(container, name)

    def remove(self, container: str, stop_timeout: int = 10) -> None:
        with engine_errors(f"removing {container}"), contextlib.suppress(docker.errors.NotFound):
            self.api.stop(container, timeout=stop_timeout)
            self.api.remove_container(container, force=True)

    def state(self, container: str) -> dict[str, Any]:
        with engine_errors(f"inspecting {container}"):
            return self.api.inspect_container(container)["State"]

    def inspect(self, container: str) -> dict[str, Any]:
        with engine_errors(f"inspecting {container}"):
            return self.api.inspect_container(container)

    def run_once(self, image: str, argv: list[str], labels: Mapping[str, str], log: tuple[str, dict[str, str]]) -> int:
        """Run `argv` (as entrypoint) in a throwaway container with this log driver and options;
        its exit code. Removed at the end, which flushes its log driver."""
        with engine_errors(f"running a one-off container of {image}"):
            config = self.api.create_host_config(log_config={"Type": log[0], "Config": log[1]})
            created = self.api.create_container(
                image, entrypoint=argv[:1], command=argv[1:], labels=dict(labels), host_config=config
            )
            try:
                self.api.start(created["Id"])
                return int(self.api.wait(created["Id"], timeout=30)["StatusCode"])
            finally:
                self.api.remove_container(created["Id"], force=True)

    def run_on_network(
        self, image: str, argv: list[str], network: str, binds: Mapping[str, str], user: str, timeout: int = 300
    ) -> tuple[int, str]:
        """Run `argv` (as entrypoint) in a throwaway container on `network`, with read-only
        `binds` (host path -> container path): (exit code, the tail of its output)."""
        with engine_errors(f"running a one-off container of {image}"):
            config = self.api.create_host_config(
                binds={host: {"bind": inside, "mode": "ro"} for host, inside in binds.items()}, network_mode=network
            )
            created = self.api.create_container(
                image, entrypoint=argv[:1], command=argv[1:], user=user, host_config=config
            )
            try:
                self.api.start(created["Id"])
                code = int(self.api.wait(created["Id"], timeout=timeout)["StatusCode"])
                return code, self.api.logs(created["Id"], tail=5).decode("utf-8", "replace")
            finally:
                self.api.remove_container(created["Id"], force=True)

    def restart(self, container: str, stop_timeout: int = 10) -> None:
        with engine_errors(f"restarting {container}"):
            self.api.restart(container, timeout=stop_timeout)

    # -- exec and archives (backups): bytes streamed, never held whole -------------------------

    def exec_output(self, container: str, cmd: list[str], user: str = "") -> ExecOutput:
        """Run `cmd` in a running container; iterate its stdout as it comes (stderr is kept,
        bounded, for the error message), then read `exit_code`."""
        return self._output(container, self._exec_socket(container, cmd, user, stdin=False))

    def exec_input(self, container: str, cmd: list[str], chunks: Iterable[bytes], user: str = "") -> ExecResult:
        """Run `cmd` with `chunks` on its stdin (then end of file); its output is drained by a
        thread meanwhile, so a chatty command never blocks the writer."""
        running = self._exec_socket(container, cmd, user, stdin=True)
        output = self._output(container, running)
        drained = [b""]
        failed: list[BaseException] = []

        def drain() -> None:
            try:
                for data in output:
                    drained[0] = (drained[0] + data)[-KEEP:]
            except BaseException as exc:  # noqa: BLE001 - reported by the writer below
                failed.append(exc)

        sock = getattr(running.sock, "_sock", running.sock)
        # Blocking before the drain starts (it makes it so too): a timeout switched off by the
        # other thread during a sendall that met a full buffer raised EAGAIN ("Resource
        # temporarily unavailable"), failing a verify or a restore now and then.
        sock.settimeout(None)
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            with engine_errors(f"writing to {cmd[0]} in {container}"):
                for chunk in chunks:
                    sock.sendall(chunk)
                sock.shutdown(socket.SHUT_WR)
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()  # the command sees its input cut short and fails
            reader.join(10)
            raise
        reader.join()
        if failed:
            raise failed[0]
        return ExecResult(output.exit_code, drained[0], output.stderr)

    def _output(self, container: str, running: _Exec) -> ExecOutput:
        return ExecOutput(
            container, running.sock, lambda: self.api.exec_inspect(running.exec_id).get("ExitCode"), engine_errors
        )

    def _exec_socket(self, container: str, cmd: list[str], user: str, stdin: bool) -> Any:
        with engine_errors(f"running {cmd[0]} in {container}"):
            created = self.api.exec_create(container, cmd, stdout=True, stderr=True, stdin=stdin, user=user)
            raw = self.api.exec_start(created["Id"], socket=True)
        return _Exec(raw, created["Id"])

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        """The tar stream of `path` in a container (running or not), in 1 MiB chunks."""
        with engine_errors(f"reading {path} from {container}"):
            chunks, _stat = self.api.get_archive(container, path, chunk_size=1 << 20)
            yield from chunks

    def put_archive(self, container: str, path: str, tar_chunks: Iterable[bytes]) -> None:
        """Unpack a tar stream into `path` of a container (running or not), streamed."""
        with engine_errors(f"writing into {path} of {container}"):
            if not self.api.put_archive(container, path, iter(tar_chunks)):
                raise OperationFailed(f"the engine did not unpack the archive into {container}:{path}")

    def logs(self, container: str, tail: int | str = "all", since: int | None = None) -> str:
        """Its output (`since`: only lines from that Unix time on)."""
        with engine_errors(f"reading logs of {container}"):
            data = self.api.logs(container, tail=tail, stdout=True, stderr=True, since=since)
        return data.decode("utf-8", "replace")

    def output_times(self, container: str, since: float, until: float, tail: int | str = "all") -> list[float]:
        """The Unix times of its output lines between `since` and `until`, oldest first (of
        the last `tail` lines: the engine takes the tail first, then the window)."""
        with engine_errors(f"reading logs of {container}"):
            data = self.api.logs(
                container, stdout=True, stderr=True, timestamps=True, since=since, until=until, tail=tail
            )
        return engine_rows.line_times(data)

    def follow_logs(self, container: str, tail: int | str = "all") -> Iterator[bytes]:
        with engine_errors(f"reading logs of {container}"):
            yield from self.api.logs(container, tail=tail, stdout=True, stderr=True, stream=True, follow=True)


@dataclass
class _Exec:
    sock: Any
    exec_id: str
