"""The images of a training folder: listed, paired (GT/ + DAMAGED/) and loaded into memory."""

from pathlib import Path

import numpy as np

from keras_lnca.data.io import convert_channels
from keras_lnca.data.io import list_images
from keras_lnca.data.io import read_raw
from keras_lnca.errors import UserError


def _unify(raws):
    """Brings `(array, scale)` pairs to one dtype; returns `(arrays, scale)`."""
    scales = {scale for _, scale in raws}
    if scales == {255}:
        return [a for a, _ in raws], 255
    if scales <= {255, 65535}:
        return [a.astype(np.uint16) * (257 if s == 255 else 1) for a, s in raws], 65535
    return [a.astype(np.float32) / np.float32(s) for a, s in raws], 1.0


def load_images(paths, channels):
    """Reads `paths` into memory in their native integer dtype.

    Returns:
        `(arrays, scale)`: `H x W x channels` arrays sharing one dtype (uint8
        when every file is 8-bit) and the value that means white.
    """
    raws = []
    for path in paths:
        array, scale = read_raw(path)
        raws.append((convert_channels(array, channels), scale))
    return _unify(raws)


def folder_paths(folder):
    """The sorted images of `folder`; a clear error when there are none."""
    paths = list_images(folder)
    if not paths:
        raise UserError(f"no images in {folder}")
    return paths


def is_paired_folder(folder):
    """Whether `folder` has the paired layout `GT/` + `DAMAGED/`."""
    folder = Path(folder)
    return (folder / "GT").is_dir() and (folder / "DAMAGED").is_dir()


def _by_stem(folder):
    stems = {}
    for path in list_images(folder):
        if path.stem in stems:
            raise UserError(f"two images named {path.stem!r} in {folder}")
        stems[path.stem] = path
    return stems


def find_pairs(folder):
    """Matches `folder/GT/*` with `folder/DAMAGED/*` by file stem.

    Args:
        folder: a folder with `GT/` and `DAMAGED/` subfolders.

    Returns:
        A list of `(stem, gt_path, damaged_path)`, sorted by stem.

    Raises:
        keras_lnca.errors.UserError: a missing subfolder, no images, or files
            without a partner.

    Example:

    >>> from keras_lnca.data import find_pairs
    >>> find_pairs("paired")  # doctest: +SKIP
    [('0001', PosixPath('paired/GT/0001.png'), PosixPath('paired/DAMAGED/0001.png'))]
    """
    folder = Path(folder)
    if not is_paired_folder(folder):
        raise UserError(f"{folder} needs GT/ and DAMAGED/ subfolders")
    gt, damaged = _by_stem(folder / "GT"), _by_stem(folder / "DAMAGED")
    for name, one, other in (("GT", gt, damaged), ("DAMAGED", damaged, gt)):
        lonely = sorted(set(one) - set(other))
        if lonely:
            raise UserError(
                f"{len(lonely)} image(s) in {folder / name} have no partner "
                f"with the same name (e.g. {lonely[0]!r})"
            )
    if not gt:
        raise UserError(f"no images in {folder / 'GT'}")
    return [(stem, gt[stem], damaged[stem]) for stem in sorted(gt)]


def load_pairs(folder, channels):
    """Reads a paired folder; returns `(stacked, scale, c, stems)`.

    Each element of `stacked` is GT and DAMAGED concatenated on the channel
    axis (`H x W x 2c`), so one crop/flip/rotation moves both together.
    """
    pairs = find_pairs(folder)
    gts, scale = load_images([p[1] for p in pairs], channels)
    damaged, damaged_scale = load_images([p[2] for p in pairs], channels)
    if scale != damaged_scale or gts[0].dtype != damaged[0].dtype:
        gts, scale = _unify([(a, scale) for a in gts] + [(a, damaged_scale) for a in damaged])
        gts, damaged = gts[: len(pairs)], gts[len(pairs):]
    stacked = []
    for (stem, _, _), a, b in zip(pairs, gts, damaged):
        if a.shape != b.shape:
            raise UserError(
                f"GT and DAMAGED {stem!r} differ in shape: {a.shape} vs {b.shape} "
                "(pass channels= to convert)"
            )
        stacked.append(np.concatenate([a, b], axis=-1))
    return stacked, scale, gts[0].shape[-1], [p[0] for p in pairs]
