"""The one Jinja environment: sandboxed, strict, with filters that escape a value for the
file format it lands in. Rendering returns strings; writing is `files.py`'s job.

Delimiters are `[[ ]]`, `[% %]` and `[# #]`, because the files we render are full of
other tools' `{{ }}`: GitHub Actions expressions, Prometheus and Alertmanager templates,
Grafana legends. Templates then hold those literally, with no `{% raw %}` noise.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from mindscape_ops.render.resources import templates_dir


def yaml_str(value: Any) -> str:
    """A YAML double-quoted scalar: JSON string syntax is valid YAML and escapes everything."""
    return json.dumps(str(value), ensure_ascii=False)


def json_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def nginx_str(value: Any) -> str:
    """A double-quoted nginx string. `$` would start a variable, so it is spelled `${dollar}`
    (the gateway config defines `$dollar`); quotes and backslashes are escaped."""
    text = str(value)
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise ValueError("control characters cannot be written to nginx.conf")
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}")
    return f'"{text}"'


def s_or_ms(duration: Any) -> str:
    """A duration as nginx and compose spell it: whole seconds, else milliseconds."""
    seconds = duration.seconds
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{round(seconds * 1000)}ms"


def promql_str(value: Any) -> str:
    """A PromQL string literal (label matcher value)."""
    return json.dumps(str(value))


def regex_escape(value: Any) -> str:
    return re.escape(str(value))


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
    )
    env.filters.update(
        yaml_str=yaml_str,
        json_value=json_value,
        nginx_str=nginx_str,
        promql_str=promql_str,
        regex_escape=regex_escape,
        s_or_ms=s_or_ms,
    )
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
