"""The Debian mirror comes from the machine's apt configuration (one-line and deb822 files), the
override variable wins, none found is a clear error; and no mirror host is named in the repo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mindscape_ops.errors import EnvironmentUnusable
from mindscape_ops.images.mirror import (
    MIRROR_ENV,
    apt_sources,
    deb822_sources,
    find_mirror,
    one_line_sources,
    pick_mirror,
)

from .conftest import REPO

ONE_LINE = """\
# a comment; deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://security.example/debian-security bookworm-security main
deb http://updates.example/debian bookworm-updates main
deb http://contrib-only.example/debian bookworm contrib non-free
deb  http://mirror.example/debian/   bookworm main contrib   # trailing comment
deb http://later.example/debian bookworm main
"""

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror822.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security822.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_one_line_sources_pick_the_suite_itself_with_main():
    sources = list(one_line_sources(ONE_LINE))
    assert [s.uri for s in sources][0] == "http://security.example/debian-security"  # options skipped
    assert all("commented" not in s.uri and "src.example" not in s.uri for s in sources)
    assert pick_mirror(sources, "bookworm") == "http://mirror.example/debian/"
    assert pick_mirror(sources, "trixie") is None


def test_deb822_sources_read_stanzas_types_and_the_enabled_field():
    assert pick_mirror(deb822_sources(DEB822), "bookworm") == "http://mirror822.example/debian"
    assert pick_mirror(deb822_sources(DEB822), "bookworm-security") == "http://security822.example/debian-security"
    disabled = "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n"
    assert pick_mirror(deb822_sources(disabled), "bookworm") is None
    sources_only = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n"
    assert pick_mirror(deb822_sources(sources_only), "bookworm") is None
    folded = (
        "Types: deb\nURIs: http://a.example/debian\n http://b.example/debian\nSuites: bookworm\nComponents:\n main\n"
    )
    assert [s.uri for s in deb822_sources(folded)] == ["http://a.example/debian", "http://b.example/debian"]
    assert pick_mirror(deb822_sources(folded), "bookworm") == "http://a.example/debian"


def test_a_uri_debootstrap_cannot_fetch_from_is_passed_over():
    text = "deb cdrom:[Debian 12]/ bookworm main\ndeb mirror+file:/etc/apt/m.txt bookworm main\n"
    assert pick_mirror(one_line_sources(text + "deb https://ok.example/debian bookworm main\n"), "bookworm") == (
        "https://ok.example/debian"
    )


def machine(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "etc" / "apt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_machines_files_are_read_in_apts_order(tmp_path: Path):
    root = machine(
        tmp_path,
        {
            "sources.list": "# nothing here\n",
            "sources.list.d/debian.sources": DEB822,
            "sources.list.d/other.list": "deb http://from-list.example/debian bookworm main\n",
            "sources.list.d/vendor.list.disabled": "deb http://disabled.example/debian bookworm main\n",
        },
    )
    assert [s.uri for s in apt_sources(root)][0] == "http://from-list.example/debian"
    assert find_mirror("bookworm", env={}, root=root) == "http://from-list.example/debian"
    (root / "etc/apt/sources.list.d/other.list").unlink()
    assert find_mirror("bookworm", env={}, root=root) == "http://mirror822.example/debian"


def test_the_override_wins_and_none_found_says_to_set_it(tmp_path: Path):
    root = machine(tmp_path, {"sources.list": "deb http://x.example/ubuntu jammy main\n"})
    assert find_mirror("bookworm", env={MIRROR_ENV: "http://override.example/debian"}, root=root) == (
        "http://override.example/debian"
    )
    with pytest.raises(EnvironmentUnusable) as unusable:
        find_mirror("bookworm", env={}, root=root)
    assert "no Debian mirror for bookworm" in unusable.value.message and MIRROR_ENV in unusable.value.hint
    with pytest.raises(EnvironmentUnusable):
        find_mirror("bookworm", env={}, root=tmp_path / "empty")


# A Debian mirror's host, written so that this file does not match itself.
MIRROR_HOST = re.compile(r"[a-z0-9.-]+\.debian\.(org|net)\b|\bmirrors?\.[a-z0-9-]+\.[a-z]{2,}", re.IGNORECASE)


def test_no_mirror_host_is_named_anywhere_in_the_repository():
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    found = []
    for name in listed.stdout.splitlines():
        path = REPO / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{name}: {m.group(0)}" for m in MIRROR_HOST.finditer(text)]
    assert found == []
