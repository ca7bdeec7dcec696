"""Ctrl-C at every moment of `backup create`, engine-free: a sweep raises KeyboardInterrupt at
each line the command runs in turn (in the CLI's create, the backup package and the file
helpers) and checks that it either kept a whole, listed backup and said so, or kept nothing of
it and said so (issue 22). The real signal, on a real dump, is tests/test_backup_faults_engine.py."""

from __future__ import annotations

import contextlib
import functools
import json
import linecache
import sys
from pathlib import Path

import pytest
import typer.testing
from typer.testing import CliRunner

from mindscape_ops.backup import actions
from mindscape_ops.backup.context import Dump

PACKAGE = Path(actions.__file__).parents[1]
# Python checks for a signal at calls and loops; a tracer raises before a line's first instruction.
# On `try:` (a no-op) and on a `with` line (also seen when the block is left, before __exit__
# is called) that would skip handlers no real signal skips: those lines are not interrupted.
SKIP = ("try:", "with ")
TRACED = (str(PACKAGE / "backup"), str(PACKAGE / "cli" / "backup.py"), str(PACKAGE / "adapters" / "files.py"))


class Hooks:
    """A dump of a few chunks, through a stream that cleans up like the real one."""

    closed: list[bool] = []

    @contextlib.contextmanager
    def dump(self, ctx):
        def chunks():
            try:
                for n in range(4):
                    yield bytes([n]) * 1000
            finally:
                Hooks.closed.append(True)

        made = Dump(chunks(), "pg_dump-custom", "16", "container", {"public.t": 4})
        try:
            yield made
        finally:
            made.chunks.close()


def interrupt_at(line: int, previous):
    """A tracer raising KeyboardInterrupt (as Python does on SIGINT) before the `line`-th line
    run in TRACED, once; then the `previous` one (coverage's, under `make test`) is back."""
    seen, at = [0], []

    def local(frame, event, arg):
        text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).lstrip()
        if event == "line" and not text.startswith(SKIP):
            seen[0] += 1
            if seen[0] == line:
                sys.settrace(previous)
                at.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
                raise KeyboardInterrupt
        return local

    def tracer(frame, event, arg):
        code = frame.f_code  # modules load before the command runs (and once)
        return local if code.co_filename.startswith(TRACED) and code.co_name != "<module>" else None

    return tracer, seen, at


def run_create(directory: Path, line: int):
    from mindscape_ops.cli import app

    previous = sys.gettrace()  # coverage's tracer, which must measure the tests after this one
    tracer, seen, at = interrupt_at(line, previous)
    sys.settrace(tracer)
    try:
        result = CliRunner().invoke(app, ["backup", "create"], env={"COLUMNS": "300", "CI": "1"})
    finally:
        sys.settrace(previous)
    return result, seen[0], at


def test_ctrl_c_at_any_line_of_create_keeps_a_whole_listed_backup_or_nothing_and_says_which(tmp_path, monkeypatch):
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "platform.yaml").write_text("version: 1\nproject: cc\nservices: {postgres: {}}\n")
    monkeypatch.setattr(actions, "_hooks", lambda service: Hooks())
    monkeypatch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))  # once, not per run
    monkeypatch.chdir(directory)
    folder = directory / "backups" / "cc"
    assert run_create(directory, 0)[0].exit_code == 0  # the workspace and its audit log are made
    audit_log = directory / ".mindscape" / "audit.log"
    outcomes = {"kept": 0, "nothing": 0}
    audited, line = 1, 0
    while True:
        line += 1
        if folder.exists():
            for path in folder.iterdir():
                path.unlink()
        Hooks.closed.clear()
        result, seen, at = run_create(directory, line)
        if seen < line:  # ran to its end before the line came: the sweep is over
            assert result.exit_code == 0, result.output
            break
        output = result.output
        where = f"Ctrl-C before {at}: exit {result.exit_code}: {output}"
        assert result.exit_code == 130 and "Traceback" not in output, where
        entries = audit_log.read_text().splitlines()
        audit = json.loads(entries[-1]) if len(entries) > audited else {"outcome": "interrupted (exit 130): not begun"}
        audited = len(entries)
        left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        listed = [item.manifest for item in actions.listing(_project(directory))]
        if " is kept" in output or "the backups it made are kept" in output:
            outcomes["kept"] += 1
            [manifest] = listed
            assert f"kept: {manifest.id}" in output or f"{manifest.id} is kept" in output, where
            assert audit["outcome"].startswith(("interrupted (exit 130)", "ok")), f"{audit}, {where}"
            assert left == [f"{manifest.id}.backup", f"{manifest.id}.manifest.json"], where
            actions.check_object(_project(directory), actions._store(_project(directory)), manifest)  # whole
            metrics = directory / ".mindscape" / "metrics" / "mindscape_backup.prom"
            assert 'service="postgres"' in metrics.read_text(), where  # the last good backup is counted
        else:
            outcomes["nothing"] += 1
            assert "nothing of it was kept" in output or "no backup was begun" in output, where
            assert left == [] and listed == [], where
            assert audit["outcome"].startswith("interrupted (exit 130)"), where
            assert Hooks.closed in ([], [True]), where  # the dump's stream closed whenever it began
    # the sweep crossed the commit point: both outcomes were seen, many times
    assert outcomes["kept"] >= 3 and outcomes["nothing"] >= 20, outcomes
    print(outcomes)


def _project(directory: Path):
    from mindscape_ops.workspace.project import open_project

    return open_project([directory / "platform.yaml"])


@pytest.mark.parametrize("when", ["manifest written", "metrics"])
def test_the_message_after_the_commit_point_names_the_kept_backup(tmp_path, monkeypatch, when):
    """A Ctrl-C as the manifest's write returns (the store has it) or while the metrics file is
    written: the backup is whole and listed, and the command says it is kept."""
    from mindscape_ops.backup import metrics, stores
    from mindscape_ops.cli import app

    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "platform.yaml").write_text("version: 1\nproject: ck\nservices: {postgres: {}}\n")
    monkeypatch.setattr(actions, "_hooks", lambda service: Hooks())
    if when == "manifest written":
        write = stores.LocalStore.write_small

        def written_then_interrupted(self, name, data):
            write(self, name, data)
            if name.endswith(".manifest.json"):
                raise KeyboardInterrupt

        monkeypatch.setattr(stores.LocalStore, "write_small", written_then_interrupted)
    else:
        monkeypatch.setattr(metrics, "record_success", _interrupt_once())
    monkeypatch.chdir(directory)
    result = CliRunner().invoke(app, ["backup", "create"], env={"COLUMNS": "300", "CI": "1"})
    assert result.exit_code == 130, result.output
    listed = [item.manifest.id for item in actions.listing(_project(directory))]
    if when == "manifest written":  # cut inside the write: taken back, said
        assert listed == [] and "nothing of it was kept" in result.output
    else:
        [kept] = listed
        assert f"the backup of postgres was already complete: {kept} is kept" in result.output


def _interrupt_once():
    calls = []

    def record(*args):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt

    return record
