"""Running one benchmark measurement in a fresh Python process: the parent's and the worker's side."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from keras_lnca.data.io import atomic_write
from keras_lnca.memory_probe import MIB
from keras_lnca.memory_probe import proc_status_bytes


def run_worker(code, spec, env, timeout=None, prefix="lnca-bench-"):
    """Runs `python -c code SPEC_JSON RESULT_PATH` and returns its result.

    The worker writes a JSON result to `RESULT_PATH`; when it writes none,
    the last line of its stderr becomes the error.

    Args:
        code: the worker's Python source (reads `sys.argv[1:]`).
        spec: a JSON-serialisable dict, passed as the first argument.
        env: the worker's environment.
        timeout: seconds before the worker is killed.
        prefix: prefix of the temporary folder that holds the result.

    Returns:
        The worker's result dict, or `{"status": "timeout" | "error", ...}`.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = os.path.join(tmp, "result.json")
        command = [sys.executable, "-c", code, json.dumps(spec), path]
        try:
            completed = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"worker killed after {timeout:.0f} s"}
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {completed.returncode}"
        if completed.returncode in (-9, 137):
            reason = "worker killed (SIGKILL; out of memory?)"
        return {"status": "error", "error": reason, "returncode": completed.returncode}


def write_result(path, result):
    """Writes a worker's JSON result atomically (the parent reads it once the worker exits)."""
    text = json.dumps(result)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def serve(measure, argv=None):
    """The worker's side: `measure(spec, result_path)` for `SPEC_JSON RESULT_PATH` in `argv`.

    Writes the returned dict as the JSON result (exit status 0); an exception
    is written as `{"status": "error", "error": ...}` (exit status 1), for
    the parent to report and carry on.
    """
    argv = sys.argv[1:] if argv is None else argv
    spec, result_path = json.loads(argv[0]), argv[1]
    try:
        result = measure(spec, result_path)
    except Exception as error:
        message = str(error).strip().splitlines()
        result = {"status": "error", "error": f"{type(error).__name__}: {message[0] if message else ''}"}
        write_result(result_path, result)
        return 1
    write_result(result_path, result)
    return 0


class MemoryGuard:
    """Aborts the worker when its resident memory passes a limit.

    Polls `VmRSS` from a daemon thread; on breach writes an `over_budget`
    result and exits the process at once (it is a throwaway subprocess), so
    an over-budget point cannot take the machine's memory.

    Args:
        limit_mb: float, MiB allowed above the baseline.
        result_path: where the worker writes its JSON result.
        interval: seconds between polls.
        exit: called with the exit status on breach (`os._exit`).
    """

    def __init__(self, limit_mb, result_path, interval=0.02, exit=os._exit):
        self.limit_mb = float(limit_mb)
        self.result_path = result_path
        self.interval = interval
        self.exit = exit
        self.thread = None

    def __call__(self, baseline_bytes):
        if proc_status_bytes("VmRSS") is None:
            return
        limit = baseline_bytes + self.limit_mb * MIB

        def watch():
            while True:
                rss = proc_status_bytes("VmRSS")
                if rss is not None and rss > limit:
                    write_result(self.result_path, {
                        "status": "over_budget",
                        "observed_memory_mb": round((rss - baseline_bytes) / MIB, 1),
                        "memory_budget_mb": self.limit_mb,
                    })
                    self.exit(3)
                    return
                time.sleep(self.interval)

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
