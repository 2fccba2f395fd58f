"""Temporary folders that name the process writing them, their clean-up, and Ctrl-C.

mmtutor writes every run folder and data set into a hidden sibling first
(``.NAME.partial-PID``, ``.tmp-spoken-reviews-PID-XXXX``) and moves it into place when it is
complete, so that a reader never sees half a result. A process killed hard (SIGKILL, a power
cut) cannot remove its temporary folder; the next mmtutor process that writes beside it removes
every such folder whose process no longer exists.
"""

import contextlib
import os
import re
import shutil
import signal
from pathlib import Path


def pid_alive(pid):
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except OSError:
        return False
    return True


def remove_stale(parent, pattern):
    """Remove the folders in ``parent`` whose name matches ``pattern`` (a regular expression with
    a group ``pid``) and whose process has ended; return the names removed."""
    parent = Path(parent)
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    regex = re.compile(pattern)
    for entry in entries:
        match = regex.fullmatch(entry.name)
        if match and entry.is_dir() and not pid_alive(int(match.group("pid"))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


# Set by the mmtutor command's SIGINT handler (:func:`on_sigint`). Its KeyboardInterrupt can be
# lost when it is raised inside a callback of a C extension (Python prints "Exception ignored"
# and goes on); the flag is not, and every step that replaces old results checks it first.
interrupted = False


def on_sigint(signum, frame):
    """SIGINT handler of the mmtutor command: remember the interrupt, then raise it."""
    global interrupted
    interrupted = True
    raise KeyboardInterrupt


def raise_if_interrupted():
    """Raise KeyboardInterrupt if the mmtutor command was interrupted (a check point)."""
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_deferred():
    """Hold Ctrl-C back while a few renames replace old results by new ones.

    Inside the block a SIGINT is recorded instead of raised; at its end it is raised (as the
    handler in force would), so that an interrupt never leaves half the old files and half the
    new. Outside the main thread (where signals cannot be handled) the block runs as it is.
    """
    raise_if_interrupted()  # an interrupt that was lost on the way stops here, before any change
    caught = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt
