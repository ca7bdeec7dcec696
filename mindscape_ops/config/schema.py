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
import re
from pathlib import Path
from typing import Any

from mindscape_ops import __version__

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "platform.schema.json"  # in .mindscape/
MODELINE = f"# yaml-language-server: $schema=.mindscape/{SCHEMA_FILE}"


def platform_schema() -> dict[str, Any]:
    from mindscape_ops.config.models import Platform

    body = Platform.model_json_schema(mode="validation")
    _describe(body)
    return {
        "$schema": SCHEMA_DIALECT,
        **body,
        "title": "mindscape platform.yaml",
        "description": (
            f"One file that describes a service platform (mindscape {__version__}). "
            "Regenerate with `mindscape schema`; cross-key rules are checked by `mindscape validate`."
        ),
    }


def _describe(schema: dict[str, Any]) -> None:
    """Each key's description from the reference (config/descriptions.json, made from
    docs/platform-yaml.md by scripts/schema-descriptions), set where the key is defined."""
    from importlib.resources import files

    text = files("mindscape_ops.config").joinpath("descriptions.json").read_text(encoding="utf-8")
    known = {_generic(key): value for key, value in json.loads(text).items()}
    defs = schema.get("$defs", {})
    seen: set[tuple[str, str]] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        for key, child in node.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            text = known.get(_generic(here)) or known.get(_generic(_any_service(here)))
            if text and "description" not in child:
                child["description"] = text
            follow(child, here)

    def follow(node: dict[str, Any], path: str) -> None:
        for option in [node, *node.get("anyOf", ()), *node.get("allOf", ())]:
            ref = option.get("$ref", "")
            if ref.startswith("#/$defs/") and (ref, _generic(path)) not in seen:
                seen.add((ref, _generic(path)))
                walk(defs[ref.rsplit("/", 1)[1]], path)
            if isinstance(option.get("items"), dict):
                follow(option["items"], f"{path}[]")
            if isinstance(option.get("additionalProperties"), dict):
                follow(option["additionalProperties"], f"{path}.<*>")
            if "properties" in option:
                walk(option, path)

    walk(schema, "")


def _generic(key: str) -> str:
    """`<name>`, `<service>` ... all read as `<*>`."""
    return re.sub(r"<[a-z_]+>", "<*>", key)


def _any_service(key: str) -> str:
    """services.<name>.bind -> services.<*>.bind (the keys every service has)."""
    parts = key.split(".")
    return ".".join(["services", "<*>", *parts[2:]]) if len(parts) > 2 and parts[0] == "services" else key


def schema_text() -> str:
    return json.dumps(platform_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(workspace_dir: Path) -> Path:
    """.mindscape/platform.schema.json, written only when its text changes."""
    from mindscape_ops.adapters.files import write_if_changed

    path = workspace_dir / SCHEMA_FILE
    write_if_changed(path, schema_text())
    return path


def with_modeline(text: str) -> str:
    """`text` with the yaml-language-server line first (once)."""
    if text.startswith("# yaml-language-server:"):
        return text
    return f"{MODELINE}\n{text}"
