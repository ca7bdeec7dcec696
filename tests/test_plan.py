"""The pure convergence plan, the config hash, and readiness waiting (no engine needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.provision.convergence import (
    LABEL_CONFIG_HASH,
    LABEL_CONFIG_PARTS,
    Desired,
    Kind,
    Observed,
    converge,
)
from mindscape_ops.provision.readiness import NotReady, Wait, wait_until_ready
from mindscape_ops.services.registry import BY_NAME
from mindscape_ops.services.spec import container_specs

from .conftest import EXAMPLES

SECRETS = {"POSTGRES_PASSWORD": "pw1", "REDIS_PASSWORD": "pw2", "GRAFANA_ADMIN_PASSWORD": "pw3"}


def desired_for(example="full", secrets=SECRETS, digests=None, image="sha256:1"):
    platform = load([EXAMPLES / example / "platform.yaml"], env={}).platform
    specs = container_specs(platform)
    return {
        name: Desired(
            spec.completed(spec.host_port if spec.host_port != "auto" else 40000, image, digests or {}, secrets),
            tuple(d for d in BY_NAME[name].depends_on if d in specs),
        )
        for name, spec in specs.items()
    }


def observed_from(desired, state="running", health="healthy"):
    return {
        name: Observed(
            want.name,
            name,
            state,
            health,
            {LABEL_CONFIG_HASH: want.config_hash, LABEL_CONFIG_PARTS: json.dumps(want.parts)},
        )
        for name, want in desired.items()
    }


def test_nothing_observed_creates_everything_in_start_order():
    desired = desired_for()
    actions = converge(desired, {})
    assert [a.kind for a in actions] == [Kind.CREATE] * len(desired)
    assert [a.service for a in actions] == list(desired)


def test_same_config_is_unchanged_and_stopped_is_started():
    desired = desired_for()
    observed = observed_from(desired)
    observed["redis"] = Observed("fullshop-redis", "redis", "exited", None, observed["redis"].labels)
    kinds = {a.service: a.kind for a in converge(desired, observed)}
    assert kinds.pop("redis") is Kind.START
    assert set(kinds.values()) == {Kind.UNCHANGED}


def test_hash_is_stable_and_covers_config_file_content():
    first, again = (
        desired_for(digests={"ops/deploy/prometheus": "aaa"}),
        desired_for(digests={"ops/deploy/prometheus": "aaa"}),
    )
    assert first["prometheus"].config_hash == again["prometheus"].config_hash
    edited = desired_for(digests={"ops/deploy/prometheus": "bbb"})
    actions = {a.service: a for a in converge(edited, observed_from(first))}
    assert actions["prometheus"].kind is Kind.RECREATE
    assert actions["prometheus"].reason == "mounted config changed"
    assert all(a.kind is Kind.UNCHANGED for name, a in actions.items() if name != "prometheus")


def test_a_new_host_port_is_named_once_in_the_reason():
    base = desired_for()
    moved = desired_for()
    spec = dataclasses.replace(moved["redis"].spec, host_port=16380, published_port=16380)
    moved["redis"] = Desired(spec, moved["redis"].depends_on)
    actions = {a.service: a for a in converge(moved, observed_from(base))}
    assert actions["redis"].kind is Kind.RECREATE and actions["redis"].reason == "host port changed"


def test_secret_change_recreates_but_secret_never_appears_in_the_hash_input():
    base = desired_for()
    # the exporter reads the password from its own file, which `up` rewrites from secrets.env
    rotated_file = {".mindscape/redis_exporter/passwords.json": "0f1e2d3c"}
    rotated = desired_for(secrets={**SECRETS, "REDIS_PASSWORD": "new"}, digests=rotated_file)
    actions = {a.service: a for a in converge(rotated, observed_from(base))}
    assert actions["redis"].kind is Kind.RECREATE and actions["redis"].reason == "secret changed"
    assert actions["redis_exporter"].kind is Kind.RECREATE
    assert actions["redis_exporter"].reason == "mounted config changed"
    assert actions["postgres"].kind is Kind.UNCHANGED
    for want in rotated.values():
        shown = json.dumps([want.spec.hash_input(), want.labels()])
        assert not any(value in shown for value in ("new", "pw1", "pw2", "pw3"))


def test_new_image_id_recreates():
    actions = converge(desired_for(image="sha256:2"), observed_from(desired_for(image="sha256:1")))
    assert {a.kind for a in actions} == {Kind.RECREATE}
    assert actions[0].reason == "image id changed"


def test_service_dropped_from_file_is_removed():
    everything = desired_for()
    fewer = {k: v for k, v in everything.items() if k != "grafana"}
    actions = converge(fewer, observed_from(everything))
    assert actions[-1].service == "grafana" and actions[-1].kind is Kind.REMOVE
    assert "volume is kept" in actions[-1].reason


def test_dependants_name_what_they_need():
    desired = desired_for()
    assert desired["pgbouncer"].depends_on == ("postgres",)
    assert desired["redis_exporter"].depends_on == ("redis",)
    assert desired["grafana"].depends_on == ("prometheus",)
    assert desired["postgres"].depends_on == desired["redis"].depends_on == ()
    order = list(desired)
    assert all(order.index(dep) < order.index(name) for name, want in desired.items() for dep in want.depends_on)


def test_a_new_gateway_exporter_container_leaves_the_gateway_as_it_is():
    """The gateway looks gateway_exporter up per request line (its stream relay), not when it
    starts: a new exporter container, maybe on a new address, or none, changes nothing of the
    gateway, and `up` of either takes in only what it needs."""
    from types import SimpleNamespace

    from mindscape_ops.provision.desired import select_services

    desired = desired_for("local")
    assert desired["gateway"].depends_on == ()
    observed = observed_from(desired)
    moved = dict(desired)
    moved["gateway_exporter"] = dataclasses.replace(
        desired["gateway_exporter"], spec=dataclasses.replace(desired["gateway_exporter"].spec, image_id="sha256:2")
    )
    actions = {a.service: a.kind for a in converge(moved, observed)}
    assert actions["gateway_exporter"] is Kind.RECREATE
    assert [n for n, kind in actions.items() if kind is not Kind.UNCHANGED] == ["gateway_exporter"]
    gone = {n: o for n, o in observed.items() if n != "gateway_exporter"}
    assert {a.service: a.kind for a in converge(desired, gone)}["gateway"] is Kind.UNCHANGED

    project = SimpleNamespace(platform=load([EXAMPLES / "local" / "platform.yaml"], env={}).platform)
    assert list(select_services(project, ["gateway_exporter"])) == ["gateway_exporter"]
    assert list(select_services(project, ["gateway"])) == ["gateway"]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_returns_once_the_probe_passes():
    clock, calls = FakeClock(), []

    def attempt():
        calls.append(clock.now)
        if len(calls) < 4:
            raise NotReady("connection refused")

    waited = wait_until_ready(attempt, Wait(timeout=10, interval=0.5), clock=clock, sleep=clock.sleep)
    assert waited == 1.5 and len(calls) == 4


def test_wait_times_out_with_the_last_observation():
    clock = FakeClock()

    def attempt():
        raise NotReady("the database system is starting up")

    with pytest.raises(NotReady, match="not ready after 3s; last check: the database system is starting up"):
        wait_until_ready(attempt, Wait(timeout=2, interval=0.5, start_period=1), clock=clock, sleep=clock.sleep)
    assert clock.now == 3.0


def test_wait_stops_at_once_when_the_container_dies():
    clock = FakeClock()

    def attempt():
        raise NotReady("refused")

    with pytest.raises(NotReady, match="exited with code 1"):
        wait_until_ready(
            attempt, Wait(60, 1), still_alive=lambda: "container exited with code 1", clock=clock, sleep=clock.sleep
        )
    assert clock.now == 0
