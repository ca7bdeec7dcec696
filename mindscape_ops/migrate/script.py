"""A transactional migration as one round trip (pure: composing the text, reading failures back).

`BEGIN`, the section's statements, its tracking-row change, `COMMIT` and `RESET ALL` go to the
server as one simple-query message: the server runs them in order and stops at the first error,
which leaves the explicit transaction aborted (the runner then rolls it back), so a migration
still applies together with its record or not at all. Sending each statement on its own cost a
round trip apiece (seven per migration, where `psql` in one session needs five): round trips,
not Python or the server's work, were most of a run (profiled with cProfile and log_statement).

The server answers with one result per statement that ran, the last one the error; a parse
error comes alone, before anything ran, with a position into the whole text. Either way the
failing statement is found again here, so an error still names its file line.
"""

from __future__ import annotations

from dataclasses import dataclass

from mindscape_ops.migrate.sql import Statement

# A newline first: a statement may end in a `--` comment, which would swallow a plain `;`.
SEPARATOR = "\n;\n"


@dataclass(frozen=True)
class Script:
    text: str
    statements: tuple[Statement, ...]  # the migration's own, in order
    starts: tuple[int, ...]  # where each of them begins in `text`
    record_start: int  # where the tracking-row statement begins in `text`

    def failed_statement(self, result_index: int, position: int | None) -> tuple[int, int | None] | None:
        """The migration statement a failure belongs to, as (its index, the 1-based position in
        it or None), from the index of the failing result and the server's 1-based position in
        `text`; None when the failure is not in a migration statement (the record, COMMIT)."""
        if position is not None:
            index = position - 1
            if index < self.record_start:
                found = [i for i, start in enumerate(self.starts) if start <= index]
                if found:
                    # past a statement's end, in the separator after it: where its text ends
                    i = found[-1]
                    return i, min(index - self.starts[i], len(self.statements[i].text)) + 1
            elif result_index == 0 and self.statements:
                # A parse error in our own suffix: the migration's last statement left something
                # open (a parenthesis, say) that ran on into it.
                return len(self.statements) - 1, None
        if 1 <= result_index <= len(self.statements):
            return result_index - 1, None
        return None


def compose(statements: list[Statement], record: str) -> Script:
    """The script running `statements` and `record` (the tracking-row INSERT or DELETE) in one transaction."""
    parts = ["BEGIN", *(statement.text for statement in statements), record, "COMMIT", "RESET ALL"]
    starts, offset = [], 0
    for part in parts:
        starts.append(offset)
        offset += len(part) + len(SEPARATOR)
    return Script(SEPARATOR.join(parts), tuple(statements), tuple(starts[1:-3]), starts[-3])
