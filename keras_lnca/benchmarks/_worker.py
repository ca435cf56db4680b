"""Running one benchmark measurement in a fresh Python process."""

import json
import os
import subprocess
import sys
import tempfile


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
