"""The part of docs/platform-yaml.md that is about the services as a whole, made from the
registry so it cannot drift from the code: the start order, what each service is, what it
needs, how `up` knows it is ready, where Prometheus scrapes it. scripts/docs-services writes it
between its markers; tests/test_docs_reference.py fails when the doc is not what this makes."""

from __future__ import annotations

from mindscape_ops.services.registry import SERVICES

BEGIN = "<!-- services: generated from the service modules by scripts/docs-services; do not edit -->"
END = "<!-- end of the generated services -->"


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names) or "nothing"


def services_reference() -> str:
    """The generated block, markers included."""
    lines = [
        BEGIN,
        f"`up` starts them in this order, each after the ones it needs: {_code([s.name for s in SERVICES])}.",
        "",
    ]
    for service in SERVICES:
        ready = service.probe.describe(service.name)
        expect = getattr(service.probe.http, "expect", "")
        ready += f" shows `{expect}`" if expect else ""
        metrics = f"scraped on `:{service.metrics.port}{service.metrics.path}`" if service.metrics else "no metrics"
        needs = f"needs {_code(service.depends_on)}; " if service.depends_on else ""
        lines.append(f"- `{service.name}`: {service.summary}; {needs}ready when {ready}; {metrics}.")
    lines.append(END)
    return "\n".join(lines)


def with_reference(doc: str) -> str:
    """`doc` with its generated block made anew (the markers must be there once)."""
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + services_reference() + doc[end:]
