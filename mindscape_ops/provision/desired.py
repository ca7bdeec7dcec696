"""From a project to a plan: prepare the workspace, look at the engine, hash what each
container should be, and decide. Executing the plan is runtime/converge.py's job."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mindscape_ops.adapters.docker import ContainerRequest, Engine
from mindscape_ops.adapters.files import content_digest
from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.provision.convergence import Action, Desired, Kind, converge
from mindscape_ops.provision.endpoints import auto_settings, platform_as_run
from mindscape_ops.provision.ownership import workspace_labels
from mindscape_ops.provision.ports import is_free, pick_free, process_holding
from mindscape_ops.services.registry import BY_NAME
from mindscape_ops.services.spec import SECRETS_ON_HOST, ContainerSpec, container_specs
from mindscape_ops.workspace.project import Project

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    specs: dict[str, ContainerSpec]
    secrets: dict[str, str]


def select_services(
    project: Project, wanted: Iterable[str], platform: Platform | None = None
) -> dict[str, ContainerSpec]:
    """The services to act on, with their specs: those named and what they depend on; all
    when none named. `platform`: the platform as run (`setting_ports`), else as written."""
    specs = container_specs(platform or project.platform)
    wanted = list(wanted)
    unknown = [name for name in wanted if name not in specs]
    if unknown:
        raise UsageError(f"not an enabled service: {', '.join(unknown)}", f"enabled: {', '.join(specs) or 'none'}")
    if not wanted:
        return specs
    chosen: set[str] = set()

    def add(name: str) -> None:
        if name not in chosen:
            chosen.add(name)
            for dependency in BY_NAME[name].depends_on:
                if dependency in specs:
                    add(dependency)

    for name in wanted:
        add(name)
    return {name: spec for name, spec in specs.items() if name in chosen}


def port_holders(engine: Engine, bind: str, port: int, own: str | None) -> list[str]:
    """Who holds a host port, other than our own container `own`: containers publishing it
    (asked of the engine: with userland-proxy off a published port has no listener), else
    the local process listening on it."""
    publishers = engine.publishers_of(port)
    others = [name for name in publishers if name != own]
    if others:
        return [f"container {name}" for name in others]
    if publishers or is_free(bind, port):  # held by our own container only, or by nobody
        return []
    return [process_holding(port) or "another program"]


def setting_ports(project: Project, engine: Engine | None, pick: bool) -> Platform:
    """The platform as its containers run: its `auto` port settings other than `port`
    (ServiceDef.auto_ports) resolved like `port: auto` (`kept_or_picked`), then filled in."""
    wanted = auto_settings(project.platform)
    if not wanted:
        return project.platform
    specs = container_specs(project.platform)
    taken = {int(s.host_port) for s in specs.values() if s.host_port != "auto"}
    taken |= {port for s in specs.values() for port in s.extra_ports.values() if isinstance(port, int)}
    enabled = project.platform.services.enabled()
    autos = {
        key: (project.platform.container_name(service), enabled[service].bind, container_port)
        for key, (service, _, container_port) in wanted.items()
    }
    return platform_as_run(project, kept_or_picked(project, engine, pick, autos, taken))


def resolve_ports(
    project: Project, specs: dict[str, ContainerSpec], pick: bool, engine: Engine | None = None
) -> dict[str, int | None]:
    """Fixed ports as written; `auto` ones kept in state, or picked (`kept_or_picked`)."""
    fixed = {name: int(spec.host_port) for name, spec in specs.items() if spec.host_port != "auto"}
    autos = {
        name: (project.platform.container_name(name), spec.bind, spec.container_port)
        for name, spec in specs.items()
        if spec.host_port == "auto"
    }
    picked = kept_or_picked(project, engine, pick, autos, set(fixed.values()))
    return {name: fixed[name] if name in fixed else picked[name] for name in specs}


def kept_or_picked(
    project: Project, engine: Engine | None, pick: bool, autos: dict[str, tuple[str, str, int]], taken: set[int]
) -> dict[str, int | None]:
    """Each `auto` port (state.json "ports" key -> (container, bind, container port)) as kept
    in state; lost from state, as the running container publishes it; when `pick` (`up`), one
    never picked, or taken since by something else, is picked now (never one of `taken` or
    state's) and saved. Without `pick`, one never picked is None."""
    state_ports: dict[str, int] = dict(project.workspace.read_state().get("ports", {}))
    taken = taken | set(state_ports.values())
    resolved: dict[str, int | None] = {}
    changed = False
    for key, (container, bind, container_port) in autos.items():
        kept = state_ports.get(key)
        if not isinstance(kept, int) and engine is not None:
            # state.json lost or set aside: the running container still knows its port
            kept = engine.published_port(container, container_port)
            if kept is not None:
                taken.add(kept)
                if pick:
                    state_ports[key], changed = kept, True
        if isinstance(kept, int) and not (pick and engine and port_holders(engine, bind, kept, container)):
            resolved[key] = kept
        elif pick:
            resolved[key] = state_ports[key] = pick_free(bind, taken)
            taken.add(resolved[key])
            changed = True
        else:
            resolved[key] = None
    if changed:
        project.workspace.update_state(ports=state_ports)
    return resolved


def make_plan(
    project: Project,
    engine: Engine,
    specs: dict[str, ContainerSpec],
    secrets: dict[str, str],
    pick_ports: bool,
    image_ids: dict[str, str | None] | None = None,
    all_services: bool = True,
    overlay: dict[str, str | None] | None = None,
) -> Plan:
    platform = project.platform
    ports = resolve_ports(project, specs, pick=pick_ports, engine=engine)
    if image_ids is None:
        image_ids = engine.image_ids(sorted({spec.image for spec in specs.values()}))
    digests: dict[str, str] = {}
    desired: dict[str, Desired] = {}
    for name, spec in specs.items():
        for mount in spec.mounts:
            # host paths are not ours to hash, live ones change by design; secret files enter as
            # the spec's fingerprints
            hashed = not (mount.host or mount.live or mount.source.startswith(SECRETS_ON_HOST))
            if mount.source not in digests and hashed:
                digests[mount.source] = content_digest(project.root, mount.source, overlay)
        completed = spec.completed(ports[name], image_ids.get(spec.image), digests, secrets)
        service = BY_NAME[name]
        desired[name] = Desired(completed, tuple(d for d in service.depends_on if d in specs))
    observed = engine.containers(platform.project)
    if not all_services:  # `up SERVICE`: leave the others alone
        observed = {name: o for name, o in observed.items() if name in desired}
    return Plan(converge(desired, observed), specs, secrets)


def check_conflicts(project: Project, engine: Engine, plan: Plan) -> None:
    """Refuse before anything is created: foreign containers with our names, taken ports."""
    problems: list[str] = []
    for action in plan.actions:
        if action.kind is Kind.CREATE:
            other = engine.container_by_name(action.desired.name)
            if other is not None:
                problems.append(
                    f"a container named {action.desired.name} exists and is not managed by mindscape; "
                    f"remove it (`docker rm -f {action.desired.name}`) or change `project:`"
                )
        if action.kind not in (Kind.CREATE, Kind.RECREATE, Kind.START):
            continue
        port, bind = action.desired.host_port, action.desired.spec.bind
        own = action.observed.name if action.observed else None
        for extra in action.desired.spec.extra_ports.values():
            if holders := port_holders(engine, bind, extra, own):
                problems.append(
                    f"services.{action.service}: port {extra} on {bind} is already in use by {', '.join(holders)}; "
                    "free it or pick another port"
                )
        if port is None:
            continue
        holders = port_holders(engine, bind, port, own)
        if holders:
            hint = (
                "free it or pick another port"
                if action.desired.spec.host_port == "auto"
                else ("free it, pick another port, or set `port: auto`")
            )
            problems.append(
                f"services.{action.service}.port: {port} on {bind} is already in use by {', '.join(holders)}; {hint}"
            )
    if problems:
        raise OperationFailed(
            "cannot start: " + "; ".join(problems)
            if len(problems) == 1
            else "cannot start:\n  - " + "\n  - ".join(problems),
            "nothing was created or changed",
        )


def run_as(project: Project, spec: ContainerSpec) -> str | None:
    """The spec's user, or, for a container that mounts a file only its owner may read (a libpq
    password file), that file's owner: the one who can read it. `prepare` gives it to the spec's
    user when it can (run as root); a file of root's is never a reason to run as root."""
    for mount in spec.mounts:
        if mount.owner_only:
            try:
                found = (project.root / mount.source).stat()
            except OSError:
                return spec.user
            return f"{found.st_uid}:{found.st_gid}" if found.st_uid != 0 else spec.user
    return spec.user


def container_request(project: Project, desired: Desired, secrets: dict[str, str]) -> ContainerRequest:
    """The Docker SDK's arguments for a spec, made only now: secret values join here."""
    spec = desired.spec
    binds = {
        (m.source if m.host else str((project.root / m.source).resolve())): {
            "bind": m.target,
            "mode": "ro" if m.read_only else "rw",
        }
        for m in spec.mounts
    }
    if spec.volume:
        binds[spec.volume] = {"bind": spec.volume_target, "mode": "rw"}
    healthcheck = None
    if spec.healthcheck:
        timing = spec.healthcheck_timing
        healthcheck = {
            "test": list(spec.healthcheck),
            "interval": timing["interval_s"] * 10**9,
            "timeout": timing["timeout_s"] * 10**9,
            "retries": timing["retries"],
            "start_period": int(spec.start_period * 1e9),
        }
    return ContainerRequest(
        name=spec.name,
        image=spec.image,
        command=list(spec.command) or None,
        user=run_as(project, spec),
        environment={**spec.environment, **{env: secrets.get(key, "") for env, key in spec.secrets.items()}},
        labels={**desired.labels(), **workspace_labels(project)},
        network=spec.network,
        alias=spec.service,
        container_port=spec.container_port,
        bind=spec.bind,
        host_port=spec.published_port or 0,
        extra_ports=dict(spec.extra_ports),
        binds=binds,
        healthcheck=healthcheck,
        extra_hosts={"host.docker.internal": "host-gateway"} if spec.reach_host else {},
        log_driver=spec.log_driver,
        log_options=dict(spec.log_options),
    )


def ensure_images(
    engine: Engine,
    specs: Iterable[ContainerSpec],
    progress: Callable[[str, str], None],
    build: Callable[[dict[str, str]], list[str]] | None = None,
) -> dict[str, str]:
    """Every image present before anything is created: the missing local images a recipe makes
    built by `build` (service -> image), the others pulled."""
    specs = list(specs)
    refs = sorted({spec.image for spec in specs})
    ids = engine.image_ids(refs)
    missing = {spec.service: spec.image for spec in specs if ids[spec.image] is None}
    if missing and build is not None and build(missing):
        ids = engine.image_ids(refs)
    for spec in specs:
        image = ids[spec.image]
        if image is None:
            progress(spec.service, f"pulling {spec.image}")
            image = engine.pull(spec.image, lambda text, s=spec.service: progress(s, text))
        ids[spec.image] = image
    return ids
