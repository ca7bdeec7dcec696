"""The Debian mirror for debootstrap, taken from the machine's apt configuration: the mirror
this machine already installs from (and may be the only one it can reach). MINDSCAPE_DEBIAN_MIRROR
overrides it. Parsing is pure; `find_mirror` reads the files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mindscape_ops.errors import EnvironmentUnusable

MIRROR_ENV = "MINDSCAPE_DEBIAN_MIRROR"
_SCHEMES = ("http://", "https://", "ftp://", "file:")  # what debootstrap can fetch from


@dataclass(frozen=True)
class Source:
    """One apt source: a URI serving these suites and components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def one_line_sources(text: str) -> Iterator[Source]:
    """`deb [options] URI SUITE COMPONENT...` lines (sources.list, *.list); deb-src skipped."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line[4:].strip()
        if words.startswith("["):  # [arch=amd64 signed-by=...]
            words = words.partition("]")[2]
        parts = words.split()
        if len(parts) >= 2:
            yield Source(parts[0], (parts[1],), tuple(parts[2:]))


def deb822_sources(text: str) -> Iterator[Source]:
    """Stanzas of `Types:`, `URIs:`, `Suites:`, `Components:` (*.sources); `Enabled: no` skipped."""
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes").lower() == "no":
            continue
        suites, components = tuple(stanza.get("suites", "").split()), tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            yield Source(uri, suites, components)


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    last = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif raw[0] in " \t" and last:  # a continuation line
            fields[last] += " " + raw.strip()
        elif ":" in raw:
            name, _, value = raw.partition(":")
            last = name.strip().lower()
            fields[last] = value.strip()


def pick_mirror(sources: Iterable[Source], suite: str, component: str = "main") -> str | None:
    """The first URI serving `suite` itself (not -security or -updates) with `component`."""
    for source in sources:
        if suite in source.suites and component in source.components and source.uri.startswith(_SCHEMES):
            return source.uri
    return None


def apt_sources(root: Path = Path("/")) -> Iterator[Source]:
    """Every source in the apt configuration under `root`, in apt's order."""
    apt = root / "etc" / "apt"
    listed = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in listed:
        if path.is_file():
            yield from one_line_sources(path.read_text(errors="replace"))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        if path.is_file():
            yield from deb822_sources(path.read_text(errors="replace"))


def find_mirror(suite: str, env: Mapping[str, str] = os.environ, root: Path = Path("/")) -> str:
    if env.get(MIRROR_ENV):
        return env[MIRROR_ENV]
    found = pick_mirror(apt_sources(root), suite)
    if found is None:
        raise EnvironmentUnusable(
            f"no Debian mirror for {suite} (main) in /etc/apt/sources.list or /etc/apt/sources.list.d/",
            f"set {MIRROR_ENV} to the URL of a Debian mirror this machine can reach",
        )
    return found
