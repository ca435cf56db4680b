"""SIGTERM and Ctrl-C as `lnca` handles them: an interruption that never lands
inside framework code.

`lnca` turns SIGTERM (and SIGINT) into `KeyboardInterrupt`, so that temporary
files are removed on the way out. Raised in the middle of TensorFlow's graph
building or SavedModel loading, that exception can leave native state half
made, and the process has been seen to crash (SIGSEGV) before its clean-up ran.
Inside a `deferred()` block the signal is only recorded, and the
`KeyboardInterrupt` is raised when the block ends, from plain Python.
"""

import contextlib

_state = {"depth": 0, "pending": False}


def terminate(signum=None, frame=None):
    """The signal handler `lnca` installs: interrupts now, or at the end of
    the `deferred()` block that is running."""
    if _state["depth"]:
        _state["pending"] = True
        return
    raise KeyboardInterrupt("terminated")


@contextlib.contextmanager
def deferred():
    """Holds an interruption (as `terminate` delivers it) until the block ends.

    Example:
    ```python
    with interrupts.deferred():
        tf.saved_model.save(module, folder)   # a SIGTERM here waits
    # ...and is raised here as KeyboardInterrupt
    ```
    """
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    if not _state["depth"] and _state["pending"]:
        _state["pending"] = False
        raise KeyboardInterrupt("terminated")
