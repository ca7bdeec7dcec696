"""The JSON Schema of platform.yaml, from the models themselves (pydantic's
model_json_schema), for editors (yaml-language-server) and other validators.

`mindscape init` writes it to .mindscape/platform.schema.json and puts a
`# yaml-language-server: $schema=.mindscape/platform.schema.json` line at the top of the
starter; `mindscape render` keeps that file in step with the installed mindscape. It lives
in the workspace, not in the repository, because it describes the mindscape installed on
this machine (a newer one accepts newer keys), the way a lock-free editor aid should.

What a schema cannot say (rules across keys, `${VAR}` in place of a number) is left to
`mindscape validate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mindscape_ops import __version__

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "platform.schema.json"  # in .mindscape/
MODELINE = f"# yaml-language-server: $schema=.mindscape/{SCHEMA_FILE}"


def platform_schema() -> dict[str, Any]:
    from mindscape_ops.config.models import Platform

    body = Platform.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        **body,
        "title": "mindscape platform.yaml",
        "description": (
            f"One file that describes a service platform (mindscape {__version__}). "
            "Regenerate with `mindscape schema`; cross-key rules are checked by `mindscape validate`."
        ),
    }


def schema_text() -> str:
    return json.dumps(platform_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(workspace_dir: Path) -> Path:
    """.mindscape/platform.schema.json, written only when its text changes."""
    from mindscape_ops.workspace.files import write_if_changed

    path = workspace_dir / SCHEMA_FILE
    write_if_changed(path, schema_text())
    return path


def with_modeline(text: str) -> str:
    """`text` with the yaml-language-server line first (once)."""
    if text.startswith("# yaml-language-server:"):
        return text
    return f"{MODELINE}\n{text}"
