"""`up`'s progress lines print what services and the image builder say as text, never as markup
(a `[/x]` in a path or an engine message must not end `up` in a traceback)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from mindscape_ops.cli.progress import Progress


@pytest.mark.parametrize("terminal", [False, True])
def test_a_detail_holding_markup_is_shown_as_it_is(terminal):
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, color_system=None)
    with Progress(console) as progress:
        progress.event("jaeger", "building", "log: /var/cache/[/x]/go.log [bold]")
        progress.event("jaeger", "built", "done [/]")
    text = out.getvalue()
    assert "done [/]" in text  # at a terminal the row is redrawn: its last state shows
    assert terminal or "/var/cache/[/x]/go.log [bold]" in text
