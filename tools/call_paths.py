"""How often a command's path through the library's files comes back to a file.

Runs one `lnca` command in this process with a profile hook, and records each
call from one file of `keras_lnca` into another (the nearest caller that is a
library file; framework code in between is skipped). The distinct file-to-file
steps, in the order they first happen, are the command's path; a step into a
file the path has already visited is a *return*. Loops count once (a step is
counted the first time it happens), so the figure measures how the work is
split between files, not how long the command runs.

    python tools/call_paths.py restore           # lnca restore, a 64 x 64 image
    python tools/call_paths.py train             # lnca train, configs/smoke_gray.json
    python tools/call_paths.py export            # lnca export, TFLite, 64 x 64
    python tools/call_paths.py restore --steps   # also print the path

The library measured is the one Python imports: run it with
`PYTHONPATH=<another checkout>` to measure that checkout (its `configs/` is
used for `train`). `docs/architecture.md` cites the figures.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import threading

# Each command as `lnca` arguments, after the scratch folder and the checkout are known.
COMMANDS = {
    "restore": lambda tmp, repo: ["restore", str(tmp / "in.png"), "-o", str(tmp / "out.png"),
                                  "--preset", "lnca_denoise_gray_s25"],
    "train": lambda tmp, repo: ["train", "--config", str(repo / "configs" / "smoke_gray.json"),
                                "--run-dir", str(tmp / "run"), "-o", str(tmp / "preset"), "--no-eval"],
    "export": lambda tmp, repo: ["export", "--preset", "lnca_denoise_gray_s25", "--format", "tflite",
                                 "--size", "64,64", "-o", str(tmp / "m.tflite")],
}


def file_steps(run, root):
    """The distinct steps `(from_file, to_file)` between files under `root` while
    `run()` runs, in the order each first happens (paths relative to `root`)."""
    root = str(root) + os.sep
    steps = {}

    def library_file(frame):
        while frame is not None and not frame.f_code.co_filename.startswith(root):
            frame = frame.f_back
        return None if frame is None else frame.f_code.co_filename[len(root):]

    def hook(frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(root):
            return
        caller = library_file(frame.f_back)
        callee = frame.f_code.co_filename[len(root):]
        if caller is not None and caller != callee:
            steps.setdefault((caller, callee), None)

    before = sys.getprofile(), threading.getprofile()
    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        run()
    finally:
        sys.setprofile(before[0])
        threading.setprofile(before[1])
    return list(steps)


def returns(steps):
    """The steps that enter a file the path had already visited."""
    visited, back = set(), []
    for caller, callee in steps:
        visited.add(caller)
        if callee in visited:
            back.append((caller, callee))
        visited.add(callee)
    return back


def measure(command, repo):
    """`{"command", "files", "steps", "returns", "path"}` for one of `COMMANDS`."""
    import numpy as np
    from PIL import Image

    import keras_lnca
    from keras_lnca import cli

    root = pathlib.Path(keras_lnca.__file__).parent
    with tempfile.TemporaryDirectory() as scratch:
        tmp = pathlib.Path(scratch)
        noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
        Image.fromarray(noisy).save(tmp / "in.png")
        argv = COMMANDS[command](tmp, repo)
        code = []
        steps = file_steps(lambda: code.append(cli.main(argv)), root)
    if code != [0]:
        raise SystemExit(f"lnca {' '.join(argv)} failed (exit {code})")
    files = {f for step in steps for f in step}
    return {"command": command, "files": len(files), "steps": len(steps),
            "returns": len(returns(steps)), "path": [list(step) for step in steps]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--steps", action="store_true", help="print the path, one step per line")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    args = parser.parse_args(argv)
    import keras_lnca

    repo = pathlib.Path(keras_lnca.__file__).resolve().parent.parent
    result = measure(args.command, repo)
    if args.steps:
        back = set(map(tuple, returns([tuple(s) for s in result["path"]])))
        for caller, callee in map(tuple, result["path"]):
            print(f"{'  <- ' if (caller, callee) in back else '     '}{caller} -> {callee}")
    print(f"lnca {args.command}: {result['files']} files, {result['steps']} distinct steps between "
          f"them, {result['returns']} returns to a file already visited ({keras_lnca.__file__})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
