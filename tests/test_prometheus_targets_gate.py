"""monitoring.targets right after `up`: Prometheus lists no target until its discovery first hands
them to its scrapers (at most every 5 s), so an empty list then is not yet an answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mindscape_ops.services import prometheus
from mindscape_ops.services.contract import Failed

Every30s = SimpleNamespace(seconds=30)
UP = {"health": "up", "labels": {"job": "redis_exporter"}, "scrapeUrl": "http://redis_exporter:9121/metrics"}


class Prometheus:
    """Answers /api/v1/targets with no target for its first `empty` requests, then `later`."""

    def __init__(self, empty: int, later: list[dict]) -> None:
        self.empty, self.later, self.asked = empty, later, 0

    def get_json(self, service: str, path: str) -> dict:
        assert (service, path) == ("prometheus", "/api/v1/targets?state=active")
        self.asked += 1
        return {"data": {"activeTargets": [] if self.asked <= self.empty else self.later}}


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(prometheus, "POLL_S", 0.01)
    monkeypatch.setattr(prometheus, "DISCOVERY_S", 0.5, raising=False)


def test_targets_not_handed_to_the_scrapers_yet_are_waited_for():
    ctx = Prometheus(empty=3, later=[UP])
    assert prometheus.targets(ctx) == "1 of 1 targets up"
    assert ctx.asked == 4


def test_a_prometheus_that_never_lists_a_target_still_fails_the_gate():
    ctx = Prometheus(empty=10**6, later=[UP])
    with pytest.raises(Failed, match="Prometheus scrapes no target"):
        prometheus.targets(ctx)
    assert ctx.asked > 1


def test_targets_listed_at_once_are_not_asked_for_again():
    ctx = Prometheus(empty=0, later=[UP])
    assert prometheus.targets(ctx) == "1 of 1 targets up"
    assert ctx.asked == 1


def test_a_target_down_at_first_is_read_again_once_it_was_scraped_again():
    """rescraped: a target down (a service still starting) is asked for until its next scrape,
    and no longer once every such target was scraped again."""
    down = {**UP, "health": "down", "lastScrape": "t0"}
    answers = [[down], [down], [{**UP, "lastScrape": "t1"}], [{**UP, "lastScrape": "t2"}]]
    ctx = Prometheus(empty=0, later=[])
    ctx.get_json = lambda service, path: {"data": {"activeTargets": answers.pop(0)}}
    ctx.platform = SimpleNamespace(services=SimpleNamespace(prometheus=SimpleNamespace(scrape_interval=Every30s)))
    assert prometheus.targets(ctx) == "1 of 1 targets up"
    assert len(answers) == 1  # the first answer, one still down, the one scraped again; not the fourth
