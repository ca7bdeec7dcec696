"""Guards against bugs a developer would plant in platform.yaml's validation, in-process: a
setting out of its range is reported at its place, and its edges are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError

ALERTING = (
    "version: 1\nproject: shop\nservices: {{prometheus: {{}}, alertmanager: {{}}}}\nmonitoring:\n"
    "  receivers: [{{name: mail, kind: email, to: ops@example.com}}]\n"
    "  smtp: {{host: mail.example.com, from: am@example.com, port: {port}}}\n"
)


@pytest.mark.parametrize("port", [65536, 70000, 0, -1])
def test_an_smtp_port_outside_1_to_65535_is_refused_at_its_place(tmp_path: Path, port: int):
    path = tmp_path / "platform.yaml"
    path.write_text(ALERTING.format(port=port))
    with pytest.raises(ConfigError) as caught:
        load([path], env={})
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:6:") and "monitoring.smtp.port:" in problem


@pytest.mark.parametrize("port", [1, 25, 587, 65535])
def test_an_smtp_port_within_range_loads(tmp_path: Path, port: int):
    path = tmp_path / "platform.yaml"
    path.write_text(ALERTING.format(port=port))
    assert load([path], env={}).platform.monitoring.smtp.port == port
