"""The code outside services/ walks the registry and does not name a service: a new service is
its module and one registry line. Where a module still names one (a string, `services.<name>`),
it is counted below, and the count may only go down: a module that names a service anew, or
names more, fails here."""

from __future__ import annotations

import re
from collections import Counter

from mindscape_ops.services.registry import SERVICES

from .conftest import REPO

PACKAGE = REPO / "mindscape_ops"
NAMES = "|".join(sorted((re.escape(s.name) for s in SERVICES), key=len, reverse=True))
NAMING = re.compile(rf"""["']({NAMES})["']|\bservices\.({NAMES})\b|\bservices import ({NAMES})\b""")

# Left to move into the services they are about (issue #21); lower a count when you do.
STILL_NAMING: dict[str, int] = {}


def naming() -> Counter[str]:
    found: Counter[str] = Counter()
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE))
        if not relative.startswith("services/"):
            found[relative] += len(NAMING.findall(path.read_text()))
    return +found


def test_no_module_outside_services_names_a_service_anew_or_more():
    grown = {path: count for path, count in naming().items() if count > STILL_NAMING.get(path, 0)}
    assert grown == {}, "walk the registry (services/registry.py) or move this into the service's module"


def test_the_counts_follow_the_code_down():
    stale = {path: count for path, count in STILL_NAMING.items() if naming().get(path, 0) < count}
    assert stale == {}, "lower STILL_NAMING to what the module names now"


def test_naming_a_service_is_caught():
    assert NAMING.findall('enabled.get("redis_exporter")') == [("redis_exporter", "", "")]
    assert NAMING.findall("platform.services.pgbouncer.pool_mode")[0][1] == "pgbouncer"
    assert NAMING.findall('"redis_exporter_extra", service.name') == []
