"""Executes the notebooks top to bottom, as CI does.

    python notebooks/run_notebooks.py                      # every notebook, small settings
    python notebooks/run_notebooks.py 01_quickstart 05     # those whose name starts so
    python notebooks/run_notebooks.py --full               # the real settings (hours on CPU)
    python notebooks/run_notebooks.py --output-dir /tmp/executed   # keep the executed copies

Each notebook runs with nbclient in a fresh Python kernel whose working directory is
`notebooks/` and whose environment is this process's: `KERAS_BACKEND` and `LNCA_DATA` are
inherited, and `LNCA_NOTEBOOK_SMALL=1` is set unless `--full` is given (or the variable is
already set). The notebooks end with assertions, so an error in any cell fails the run, and so
does a notebook running past `--timeout` seconds. Prints each notebook's wall time; exits
non-zero if any notebook failed or timed out.
The notebook files themselves are never modified.
"""

import argparse
import os
import pathlib
import re
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def find_notebooks(names):
    notebooks = sorted(HERE.glob("[0-9]*.ipynb"))
    if not names:
        return notebooks
    chosen = []
    for name in names:
        stem = pathlib.Path(name).stem
        matches = [nb for nb in notebooks if nb.stem == stem or nb.stem.startswith(stem)]
        if len(matches) != 1:
            found = ", ".join(nb.stem for nb in matches) or "none"
            raise SystemExit(f"error: {name!r} matches {found}; notebooks: "
                             f"{', '.join(nb.stem for nb in notebooks)}")
        chosen.extend(matches)
    return chosen


def run_one(path, timeout, output_dir):
    """Executes one notebook within `timeout` seconds in all; returns (seconds, error)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    deadline = start + timeout
    client = NotebookClient(
        notebook,
        # Each cell may use what is left of the notebook's budget.
        timeout_func=lambda cell: max(1, int(deadline - time.perf_counter())),
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
    )
    error = None
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, CellTimeoutError, DeadKernelError, ...
        error = exc
    seconds = time.perf_counter() - start
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, output_dir / path.name)
    return seconds, error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names or prefixes (default: all)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds one notebook may run in all before it fails (default 900)")
    parser.add_argument("--full", action="store_true",
                        help="run with the real settings (LNCA_NOTEBOOK_SMALL=0)")
    parser.add_argument("--output-dir", type=pathlib.Path, default=None,
                        help="write the executed notebooks (with outputs) here")
    args = parser.parse_args(argv)

    notebooks = find_notebooks(args.notebooks)
    if args.full:
        os.environ["LNCA_NOTEBOOK_SMALL"] = "0"
    else:
        os.environ.setdefault("LNCA_NOTEBOOK_SMALL", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend = os.environ.get("KERAS_BACKEND", "(keras.json default)")
    print(f"KERAS_BACKEND={backend} LNCA_NOTEBOOK_SMALL={os.environ['LNCA_NOTEBOOK_SMALL']}",
          flush=True)

    failures = []
    total = 0.0
    for path in notebooks:
        print(f"--- {path.name} ...", flush=True)
        seconds, error = run_one(path, args.timeout, args.output_dir)
        total += seconds
        status = "ok" if error is None else "FAILED"
        print(f"{status:>6}  {seconds:7.1f} s  {path.name}", flush=True)
        if error is not None:
            failures.append(path.name)
            message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))   # drop terminal colours
            print(f"{type(error).__name__}: {message[-4000:]}", file=sys.stderr, flush=True)
    print(f"total {total:.1f} s, {len(notebooks) - len(failures)}/{len(notebooks)} passed")
    if failures:
        print("failed: " + ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
