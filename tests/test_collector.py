"""The collector is paused for a command's start-up and resumed once its model is loaded; a
caller that goes on (a test, a library) gets it back as it was."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from mindscape_ops.workspace import collector


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(collector, "_paused", False)
    monkeypatch.setattr(collector.atexit, "register", lambda fn: fn)
    yield
    gc.enable()
    gc.unfreeze()


def test_paused_then_resumed_with_the_start_up_frozen(fresh):
    collector.pause()
    assert not gc.isenabled()
    made = [[] for _ in range(1000)]
    collector.resume()
    assert gc.isenabled() and gc.get_freeze_count() >= len(made)
    collector.restore()
    assert gc.isenabled()


def test_a_collector_turned_off_by_someone_else_stays_off(fresh):
    gc.disable()
    collector.pause()
    collector.resume()
    assert not gc.isenabled() and gc.get_freeze_count() == 0
    collector.restore()
    assert not gc.isenabled()


def test_a_command_without_a_model_gives_the_collector_back(fresh):
    collector.pause()
    collector.restore()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_cli_resumes_collection_once_the_model_is_loaded(tmp_path):
    """Through the real entry point: `validate` loads the model; the collector is on after."""
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: gcprobe\nservices:\n  redis: {}\n")
    code = (
        "import gc, sys, atexit\n"
        "from mindscape_ops import cli\n"
        "from mindscape_ops.workspace import project\n"
        "real = project.open_project\n"
        "def probe(files):\n"
        "    assert not gc.isenabled(), 'paused during start-up'\n"
        "    opened = real(files)\n"
        "    print('after', gc.isenabled(), gc.get_freeze_count() > 10000, file=sys.stderr)\n"
        "    return opened\n"
        "project.open_project = probe\n"
        "sys.argv = ['mindscape', 'validate']\n"
        "cli.main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "after True True" in result.stderr
