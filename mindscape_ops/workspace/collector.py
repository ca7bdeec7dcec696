"""Python's cyclic garbage collector around a command's start-up and exit.

A command's start-up (the CLI, the platform model, the drivers) makes a few hundred thousand
objects that live until the process ends, and almost no cyclic garbage: the collector's passes
over them cost ~40 ms, and the interpreter's last collection at exit walks them all again just
before they are freed (~0.1 s, more than a small `backup create` spends dumping). So `main()`
pauses the collector for the start-up and moves what the start-up made out of its sight once
the model is loaded (collection then resumes for what the command itself does); at exit, what
is left is frozen before the interpreter's last collection.
"""

from __future__ import annotations

import atexit
import gc

_paused = False


def pause() -> None:
    """First thing in `main()`. Nothing is paused where someone else turned the collector off."""
    global _paused
    atexit.register(gc.freeze)  # atexit runs before the interpreter's last collection
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Start-up is over: its objects are frozen (never examined again), collection resumes.
    Only after `pause()`: in a test run or a library use the collector is left as it is."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def restore() -> None:
    """Last thing in `main()`: a command that never loaded a model (or failed before) gives
    the collector back as it found it, for a caller that goes on (a test calling main())."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()
