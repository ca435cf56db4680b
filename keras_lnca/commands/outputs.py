"""The one overwrite rule of every command that writes a file: the path is a
file (not a folder) in an existing, writable folder, with the right
extension, and an existing file is replaced only with `--overwrite`."""

import os

from keras_lnca.errors import UserError


def check_output(path, option, suffix=None, overwrite=False):
    """Raises a one-line `UserError` unless `path` (or None) may be written."""
    if path is None:
        return
    path = os.fspath(path)
    if suffix and not path.lower().endswith(suffix):
        raise UserError(f"{option} must be a {suffix} file, got {path}")
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"no such folder for {option}: {parent}")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to the folder of {option}: {parent}")
    if os.path.lexists(path) and not overwrite:
        raise UserError(f"{path} exists (pass --overwrite to replace it)")
