"""Live progress of `up`: one line per service with its state and elapsed time. At a
terminal the lines update in place; elsewhere (CI, pipes) each change prints once."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rich.markup import escape

if TYPE_CHECKING:
    from rich.console import Console

_NOTES = ("settled",)  # states whose detail is kept on screen at a terminal (the next state replaces the row)
_STYLE = {"ready": "green", "failed": "red", "removed": "magenta", "running": "green", "built": "green"}


class Progress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, tuple[str, str, float]] = {}  # service -> (state, detail, started)
        self.lock = threading.Lock()
        self.live = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def event(self, service: str, state: str, detail: str) -> None:
        with self.lock:
            started = self.rows.get(service, ("", "", time.monotonic()))[2]
            self.rows[service] = (state, detail, started)
            if self.live is not None:
                if state in _NOTES:
                    self.live.console.print(f"{service}: [yellow]{state}[/] {escape(detail)}", markup=True)
                self.live.update(self._table())
            else:
                elapsed = time.monotonic() - started
                style = _STYLE.get(state, "cyan")
                self.console.print(
                    f"{service:<18} [{style}]{state:<10}[/] {elapsed:5.1f}s  [dim]{escape(detail)}[/]",
                    markup=True,
                    highlight=False,
                )

    def _table(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for service, (state, detail, started) in self.rows.items():
            done = state in ("ready", "failed", "removed", "built")
            elapsed = "" if done else f"{now - started:5.1f}s"
            table.add_row(service, f"[{_STYLE.get(state, 'cyan')}]{state}[/]", elapsed, f"[dim]{escape(detail)}[/]")
        return table
