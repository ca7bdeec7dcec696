"""Every shell block of the rendered runbooks works as written: shellcheck finds nothing in the
starter's, examples/local's and examples/full's runbooks (with every exporter on, so every
block renders), and no block reads a variable the container it runs in does not have."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.models import Platform
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.starter import create_platform

from .conftest import EXAMPLES, need
from .monitoring_support import load_platform, platform_from

FENCE = re.compile(r"^```(sh|bash|shell)\n(.*?)^```", re.M | re.S)


def shell_blocks(text: str) -> list[str]:
    return [body for _, body in FENCE.findall(text)]


def _platforms(tmp_path: Path) -> dict[str, Platform]:
    starter = tmp_path / "starter" / "platform.yaml"
    starter.parent.mkdir()
    create_platform(starter, name="starter", force=False, source=None)
    full = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    full["services"].update(node_exporter={}, pgbouncer_exporter={}, gateway_exporter={}, victorialogs={})
    (tmp_path / "full").mkdir()
    return {
        "starter": load_platform(starter),
        "local": load_platform(EXAMPLES / "local" / "platform.yaml"),
        "full": platform_from(tmp_path / "full", full),
    }


def runbook_blocks(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """'platform:file#n' -> (the folder its files are rendered in, the text of each sh block of
    each rendered runbook): a block that sources a rendered file finds it there."""
    blocks = {}
    for name, platform in _platforms(tmp_path).items():
        root = tmp_path / "rendered" / name
        for rel, text in render_platform(platform).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
            if rel.startswith(f"{platform.paths.runbooks}/"):
                for index, block in enumerate(shell_blocks(text)):
                    blocks[f"{name}:{Path(rel).name}#{index}"] = (root, block)
    return blocks


def test_blocks_are_found():
    text = "x\n```sh\necho a\n```\n\n```promql\nup\n```\n```bash\necho b\n```\n"
    assert shell_blocks(text) == ["echo a\n", "echo b\n"]


@pytest.mark.tools
def test_every_runbook_shell_block_is_shellcheck_clean(tmp_path: Path):
    if shutil.which("shellcheck") is None:
        need("shellcheck is not installed (apt-get install shellcheck)")
    blocks = runbook_blocks(tmp_path)
    assert len(blocks) >= 30 and any(":backup-and-restore.md#" in key for key in blocks)
    found = {}
    for key, (root, block) in blocks.items():
        done = subprocess.run(  # run where the runbooks say to: the folder of platform.yaml
            ["shellcheck", "--shell=bash", "--severity=style", "--external-sources", "-"],
            cwd=root,
            input=block,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            found[key] = done.stdout
    assert found == {}, "\n".join(f"{key}:\n{out}" for key, out in found.items())


def test_redis_commands_read_the_password_file_the_container_has(tmp_path: Path):
    """The Redis container has REDIS_PASSWORD_FILE, not REDIS_PASSWORD (engine test:
    test_runbook_redis_engine.py runs them)."""
    redis_lines = [
        line
        for key, (_, block) in runbook_blocks(tmp_path).items()
        for line in block.splitlines()
        if "redis-cli" in line and key.startswith("full:")
    ]
    assert len(redis_lines) >= 3
    for line in redis_lines:
        assert "$REDIS_PASSWORD_FILE" in line and '$REDIS_PASSWORD"' not in line, line
