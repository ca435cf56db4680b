"""SIGTERM and Ctrl-C as `lnca` handles them: an interruption that never lands
inside framework code.

`lnca` turns SIGTERM (and SIGINT) into `KeyboardInterrupt`, so that temporary
files are removed on the way out. Raised in the middle of TensorFlow's graph
building or SavedModel loading, that exception can leave native state half
made, and the process has been seen to crash (SIGSEGV) before its clean-up ran.
Inside a `deferred()` block the signal is only recorded, and the
`KeyboardInterrupt` is raised when the block ends, from plain Python.

An interruption raised at once can also be lost: Keras converts each batch's
logs under a bare `except:` (`pythonify_logs`), and on JAX that is where the
main thread waits for the step, so most signals landed there and training
went on to the end. The request is therefore also kept (`requested()`), and
the training loop raises it at the next batch end (`raise_if_requested()`).
"""

import contextlib

_state = {"depth": 0, "pending": False, "requested": False}


def terminate(signum=None, frame=None):
    """The signal handler `lnca` installs: interrupts now, or at the end of
    the `deferred()` block that is running; either way the request is kept
    until `raise_if_requested()` delivers it or `clear()` forgets it."""
    _state["requested"] = True
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


def requested():
    """Whether an interruption was signalled and not yet delivered or cleared."""
    return _state["requested"]


def raise_if_requested():
    """Raises the kept interruption as `KeyboardInterrupt` (from plain Python,
    where nothing swallows it), once."""
    if _state["requested"]:
        _state["requested"] = False
        raise KeyboardInterrupt("terminated")


def clear():
    """Forgets an interruption that was handled (`lnca` calls it on exit)."""
    _state.update(pending=False, requested=False)
