"""debootstrap has a time limit (issue 22): a stalled mirror ends the build with what to do,
and nothing debootstrap started keeps running."""

from __future__ import annotations

import os
import time

import pytest

from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.images import rootfs


def test_a_debootstrap_over_its_time_limit_is_stopped_with_every_process_it_started(tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo fetching; wait"  # a child, as debootstrap's wget
    started = time.monotonic()
    with pytest.raises(OperationFailed) as failed:
        rootfs.run_debootstrap(["sh", "-c", script], tmp_path / "debootstrap.log", timeout=1)
    assert time.monotonic() - started < 30
    assert "debootstrap did not finish within 1s" in failed.value.message
    assert rootfs.TIMEOUT_ENV in (failed.value.hint or "") and "MINDSCAPE_DEBIAN_MIRROR" in (failed.value.hint or "")
    child = int(pids.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert "fetching" in (tmp_path / "debootstrap.log").read_text()


def test_a_debootstrap_within_its_limit_gives_its_exit_code(tmp_path):
    assert rootfs.run_debootstrap(["sh", "-c", "exit 3"], tmp_path / "log", timeout=30) == 3


def test_the_time_limit_is_a_setting(monkeypatch):
    monkeypatch.delenv(rootfs.TIMEOUT_ENV, raising=False)
    assert rootfs.debootstrap_timeout() == rootfs.TIMEOUT_S
    monkeypatch.setenv(rootfs.TIMEOUT_ENV, "3600")
    assert rootfs.debootstrap_timeout() == 3600
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(rootfs.TIMEOUT_ENV, bad)
        with pytest.raises(UsageError, match=rootfs.TIMEOUT_ENV):
            rootfs.debootstrap_timeout()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie (not yet reaped by init) is gone too
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
