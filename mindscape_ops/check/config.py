"""config gates: platform.yaml is valid, and the generated files are what it renders now
(the `render --check` logic)."""

from __future__ import annotations

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped

REMEDY_RENDERED = (
    "run `mindscape render` (a hand-edited file: `mindscape render --diff` shows the edit; move it into "
    "platform.yaml, or `render --force` to discard it)"
)


def valid(ctx: CheckContext) -> str:
    # The project could not be opened without a valid platform.yaml: reaching here proves it.
    files = ", ".join(str(f) for f in ctx.project.loaded.files)
    return f"{files}: valid ({len(ctx.platform.services.enabled())} services enabled)"


def rendered(ctx: CheckContext) -> str:
    from mindscape_ops.render.files import compare

    state = ctx.project.workspace.read_state()
    manifest = state.get("manifest", {})
    if manifest and unchanged_since_render(ctx, state):
        return f"{len(manifest)} generated files up to date (platform.yaml and templates unchanged since render)"
    rendered = ctx.rendered()
    if not manifest and not any((ctx.project.root / path).is_file() for path in rendered):
        # platform.yaml without anything it renders, and no render here: the ops image of the
        # cluster's Jobs, which holds platform.yaml alone; the repository has the files.
        raise Skipped(
            f"none of the {len(rendered)} generated files is here, and nothing was rendered here "
            "(platform.yaml alone, as in the ops image): `mindscape render --check` where they are"
        )
    changes = compare(ctx.project.root, rendered, manifest)
    drifted = [c for c in changes if c.needs_write]
    if drifted:
        listed = ", ".join(f"{c.path} ({c.status})" for c in drifted)
        raise Failed(f"{len(drifted)} generated file(s) not as platform.yaml renders them: {listed}")
    return f"{len(changes)} generated files up to date"


def unchanged_since_render(ctx: CheckContext, state: dict) -> bool:
    """Render's own shortcut: what rendering depends on has not moved since the last render,
    and every file it wrote is still byte for byte what it wrote; then nothing needs rendering."""
    from mindscape_ops.adapters.files import sha256_text
    from mindscape_ops.render import fingerprint

    if state.get("render_fingerprint") != fingerprint(ctx.project.loaded):
        return False
    for path, recorded in state["manifest"].items():
        try:
            if sha256_text((ctx.project.root / path).read_text()) != recorded:
                return False
        except (OSError, UnicodeDecodeError):
            return False
    return True


GATES = (
    Gate("config.valid", valid, "fix the problems `mindscape validate` lists"),
    Gate("config.rendered", rendered, REMEDY_RENDERED),
)


def invalid(problems: list[str]) -> Failed:
    """config.valid's failure when platform.yaml cannot be loaded at all."""
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return Failed(f"{len(problems)} problem(s): {shown}")
