"""database gates: no pending, changed, missing or out-of-order migration (the logic of
`mindscape migrate status`)."""

from __future__ import annotations

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped


def problems(entries) -> list[str]:
    """What is not in order, one phrase per migration (pure: from `migrate status` entries)."""
    found = []
    for e in entries:
        state = str(e.state)
        if state == "applied":
            continue
        if state == "pending" and e.out_of_order:
            found.append(f"{e.label} pending, out of order (sorts before the newest applied)")
        else:
            found.append(f"{e.label} {state}")
    return found


def migrations(ctx: CheckContext) -> str:
    from mindscape_ops.migrate import actions

    platform = ctx.platform
    database = platform.services.database()
    if database not in platform.services.enabled():
        import os

        url_env = platform.database.url_env
        if not os.environ.get(url_env):
            raise Skipped(f"no database: services.{database} is not enabled and ${url_env} is not set")
    report = actions.status(ctx.project)
    wrong = problems(report.entries)
    if wrong:
        raise Failed(f"{report.database}: " + "; ".join(wrong))
    applied = sum(1 for e in report.entries if str(e.state) == "applied")
    return f"{report.database}: {applied} migration(s) applied, none pending"


REMEDY = (
    "pending: `mindscape migrate up` (out of order: `--allow-out-of-order`); changed or missing: restore the "
    "file as it was applied (`mindscape migrate status` lists each)"
)
GATES = (Gate("database.migrations", migrations, REMEDY),)
