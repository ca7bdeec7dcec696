"""up, down, status: the platform's life cycle, as library calls the CLI wraps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from mindscape_ops.adapters.docker import Engine
from mindscape_ops.errors import OperationFailed
from mindscape_ops.provision import proof
from mindscape_ops.provision.convergence import LABEL_PROJECT, LABEL_SERVICE, Action
from mindscape_ops.provision.desired import (
    Plan,
    check_conflicts,
    container_request,
    ensure_images,
    make_plan,
    select_services,
    setting_ports,
)
from mindscape_ops.provision.endpoints import Address, service_address
from mindscape_ops.provision.execute import Event, Hooks, Outcome, execute
from mindscape_ops.provision.ownership import workspace_labels
from mindscape_ops.provision.prepare import Prepared, prepare
from mindscape_ops.provision.readiness import Credentials, Wait
from mindscape_ops.provision.safety import LABEL_SECRETS, check_before_down, check_before_up, secrets_fingerprint
from mindscape_ops.services.registry import BY_NAME, SERVICES
from mindscape_ops.services.spec import build_files
from mindscape_ops.workspace.project import Project


@dataclass
class UpResult:
    actions: list[Action]
    outcomes: list[Outcome]
    prepared: Prepared  # secrets, render changes (hand edits kept are used as edited), warnings

    @property
    def hand_edited(self) -> list[str]:
        from mindscape_ops.render import Status

        return [c.path for c in self.prepared.changes if c.status is Status.HAND_EDITED]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def plan(project: Project, services: Iterable[str] = ()) -> Plan:
    """What `up` would do; touches nothing (no secrets, files, ports or containers made)."""
    secrets = project.workspace.read_secrets()
    engine = Engine()
    chosen = select_services(project, services, setting_ports(project, engine, pick=False))
    return make_plan(
        project,
        engine,
        chosen,
        secrets,
        pick_ports=False,
        all_services=not list(services),
        overlay=rendered_overlay(project),
    )


def rendered_overlay(project: Project) -> dict[str, str | None]:
    """The generated files as `up` would leave them (hand edits are kept, so not listed)."""
    from mindscape_ops import render

    changes = render.preview(project.loaded, project.workspace)
    return {c.path: c.new_text for c in changes if c.status is not render.Status.HAND_EDITED}


def up(
    project: Project,
    services: Iterable[str],
    event: Event,
    wait: bool = True,
    timeout: float | None = None,
    migrate: Callable[[Project], int] | None = None,
) -> UpResult:
    """Converge the platform. `migrate` applies pending migrations (database.migrate_on_up): the
    CLI passes it in, as migrate/ sits above this layer."""
    services = list(services)
    engine = Engine()
    check_before_up(project, engine, select_services(project, services))
    prepared = prepare(project)
    secrets = prepared.secrets
    # `auto` port settings beyond `port` (the log store's ingest port) picked now: every
    # container's log driver names it
    chosen = select_services(project, services, setting_ports(project, engine, pick=True))
    derived = {name: path for name, path in build_files(project.platform).items() if name in chosen}
    if derived:  # images derived from another, from their rendered build files
        from mindscape_ops.images.actions import build_derived

        build_derived(project.root, {name: (chosen[name].image, path) for name, path in derived.items()}, event)
    image_ids = ensure_images(
        engine,
        chosen.values(),
        lambda service, text: event(service, "pulling", text),
        build=lambda missing: _build_images(missing, event),
    )
    the_plan = make_plan(
        project, engine, chosen, secrets, pick_ports=True, image_ids=image_ids, all_services=not services
    )
    check_conflicts(project, engine, the_plan)
    platform = project.platform
    engine.ensure_network(platform.network_name, {LABEL_PROJECT: platform.project})
    hooks = _UpSteps(project, the_plan, wait, timeout, event, migrate).hooks()
    outcomes = execute(engine, the_plan.actions, hooks, event)
    if wait:  # with --no-wait nothing was probed, so nothing is proved
        proofs = {o.service: o.proof if o.ok else None for o in outcomes if o.proof or not o.ok}
        proof.record(project.workspace, proofs)
    return UpResult(the_plan.actions, outcomes, prepared)


def _build_images(missing: dict[str, str], event: Event) -> list[str]:
    """The missing local images a recipe makes (imported only then: most `up`s build nothing)."""
    from mindscape_ops.images.actions import build_for_up

    return build_for_up(missing, event)


def noop_facts(project: Project, result: UpResult) -> dict[str, Any]:
    """What the no-op `up` needs to recognise this converged state again, without the model:
    the environment variables read beyond ${VAR} (receivers' secrets), every mounted path, and
    per service what the engine should show (probes kept only where Docker has no healthcheck)."""
    services: dict[str, dict[str, Any]] = {}
    for action in result.actions:
        if action.desired is None:
            continue
        spec = action.desired.spec
        facts: dict[str, Any] = {
            "hash": action.desired.config_hash,
            "image": spec.image,
            "image_id": action.desired.image_id,
            "healthcheck": bool(spec.healthcheck),
        }
        http = BY_NAME[action.service].probe.http
        if not spec.healthcheck and http is not None:  # the light path replays HTTP probes only
            address = service_address(project, action.service)
            facts["probe"] = {
                "kind": "http",
                "host": address.host,
                "port": address.port,
                "path": http.path,
                "expect": http.expect,
            }
        services[action.service] = facts
    # every registered service's, enabled or not, as the no-op `up` has always watched them
    inputs = [service.inputs(project.platform) for service in SERVICES if service.inputs]
    return {
        # the variables and files services' prepare hooks read (a changed one is not a no-op)
        "env_names": sorted({env for found in inputs for env in found.variables}),
        "mounts": sorted(
            {m.source for a in result.actions if a.desired for m in a.desired.spec.mounts if not (m.host or m.live)}
            | {path for found in inputs for path in found.files}
        ),
        "project": project.platform.project,
        "services": services,
    }


class _UpSteps:
    """The steps of one `up` that know the platform: probing a service from the host, how long
    to wait, its volume, and the services' own start hooks (services/). It is the `UpContext`
    those hooks receive."""

    def __init__(
        self,
        project: Project,
        the_plan: Plan,
        wait: bool,
        timeout: float | None,
        event: Event,
        migrate: Callable[[Project], int] | None = None,
    ) -> None:
        self.project, self.plan, self.wait, self.timeout, self._event = project, the_plan, wait, timeout, event
        self.secrets, self._migrate = the_plan.secrets, migrate

    def hooks(self) -> Hooks:
        chosen = [BY_NAME[name] for name in self.plan.specs]
        return Hooks(
            request=lambda action: container_request(self.project, action.desired, self.plan.secrets),
            probe=self.probe,
            wait=self.waiting,
            volume=self.volume,
            before_start={s.name: partial(s.before_start, self) for s in chosen if s.before_start},
            after_ready={s.name: partial(s.after_ready, self) for s in chosen if s.after_ready},
        )

    def event(self, service: str, state: str, detail: str = "") -> None:
        self._event(service, state, detail)

    def address(self, service: str) -> Address:
        return service_address(self.project, service)

    def migrate(self) -> int:
        return self._migrate(self.project) if self._migrate else 0

    def credentials(self, service: str) -> Credentials:
        return BY_NAME[service].credentials_for(self.project.platform, self.secrets)

    def probe(self, service: str) -> Callable[[], None]:
        if not self.wait:
            return lambda: None
        probe, address, creds = BY_NAME[service].probe, self.address(service), self.credentials(service)
        return lambda: probe.check(address.host, address.port, creds)

    def waiting(self, service: str) -> Wait:
        health = self.project.platform.services.enabled()[service].health
        timeout = self.timeout if self.timeout is not None else health.timeout.seconds
        return Wait(timeout, health.interval.seconds, health.start_period.seconds)

    def volume(self, service: str) -> tuple[str, dict[str, str]] | None:
        spec = self.plan.specs[service]
        if not spec.volume:
            return None
        labels = {LABEL_PROJECT: spec.project, LABEL_SERVICE: service, **workspace_labels(self.project)}
        return spec.volume, {**labels, LABEL_SECRETS: secrets_fingerprint(spec, self.secrets)}


# -- down -------------------------------------------------------------------------------------


@dataclass
class DownResult:
    removed: list[str]
    network_removed: bool
    volumes_removed: list[str]


def down(
    project: Project,
    remove_volumes: bool,
    confirm: Callable[[dict[str, int | None]], bool],
    event: Callable[[str], None],
) -> DownResult:
    """Remove containers and network; volumes only when asked AND confirmed (asked first,
    so a refusal leaves everything as it was)."""
    engine = Engine()
    name = project.platform.project
    check_before_down(project, engine, remove_volumes)
    volumes = engine.volumes(name) if remove_volumes else {}
    if volumes and not confirm(volumes):
        raise OperationFailed(
            "nothing removed: deleting volumes was not confirmed",
            "run `mindscape down` to keep the data, or add --yes to delete it",
        )
    observed = engine.containers(name)
    from concurrent.futures import ThreadPoolExecutor

    def remove(item: tuple[str, Any]) -> str:
        service, container = item
        event(f"removing {container.name}")
        engine.remove(container.container_id)
        return container.name

    with ThreadPoolExecutor(max_workers=max(1, len(observed))) as pool:
        removed = list(pool.map(remove, observed.items()))
    network_removed = engine.remove_network(project.platform.network_name)
    for volume in volumes:
        event(f"removing volume {volume}")
        engine.remove_volume(volume)
    return DownResult(removed, network_removed, list(volumes))


# -- status -------------------------------------------------------------------------------------


def status(project: Project) -> list[dict[str, Any]]:
    """One row per enabled service (and per leftover container), JSON-ready, secret-free;
    provision/status.py says how "ready" is decided."""
    from mindscape_ops.provision import status as rows
    from mindscape_ops.provision.readiness import NotReady

    engine = Engine()
    secrets = project.workspace.read_secrets()
    chosen = select_services(project, (), setting_ports(project, engine, pick=False))
    the_plan = make_plan(project, engine, chosen, secrets, pick_ports=False, overlay=rendered_overlay(project))

    def prober(service: str) -> bool:
        address, creds = service_address(project, service), BY_NAME[service].credentials_for(project.platform, secrets)
        try:
            BY_NAME[service].probe.check(address.host, address.port, creds)
        except NotReady:
            return False
        return True

    return rows.full(project, engine, the_plan.actions, prober)


def logs(project: Project, service: str) -> tuple[Engine, str]:
    from mindscape_ops.errors import UsageError

    enabled = project.platform.services.enabled()
    if service not in enabled:
        raise UsageError(f"not an enabled service: {service}", f"enabled: {', '.join(enabled) or 'none'}")
    engine = Engine()
    name = project.platform.container_name(service)
    if engine.container_by_name(name) is None:
        raise OperationFailed(f"no container for {service} ({name})", "run `mindscape up` first")
    return engine, name
