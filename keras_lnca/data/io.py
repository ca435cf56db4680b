"""Reading, listing and writing image files (numpy only, no TensorFlow)."""

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np

from keras_lnca.errors import UserError
from keras_lnca.errors import first_line

IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pnm",
)
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as Pillow's "L" mode


# Decoding limit: images with more pixels than this are refused before any
# decoding (a small file can claim a huge image). `LNCA_MAX_PIXELS` or
# `set_max_pixels` change it; 2**28 is 16384 x 16384.
MAX_PIXELS = int(os.environ.get("LNCA_MAX_PIXELS", 2**28))


def set_max_pixels(pixels):
    """Sets the largest image (in pixels) that the readers decode; returns the old limit."""
    global MAX_PIXELS
    pixels = int(pixels)
    if pixels < 1:
        raise UserError(f"the pixel limit must be positive, got {pixels}")
    old, MAX_PIXELS = MAX_PIXELS, pixels
    return old


def _check_pixels(path, width, height):
    if width * height > MAX_PIXELS:
        raise UserError(
            f"{path} is {width}x{height} ({width * height / 1e6:.0f} Mpixels), over the "
            f"limit of {MAX_PIXELS / 1e6:.0f} Mpixels (set LNCA_MAX_PIXELS to raise it)"
        )


def _png_header(path):
    """`(bit depth, colour type)` from a PNG's IHDR, or (None, None)."""
    with open(path, "rb") as f:
        head = f.read(26)
    return (head[24], head[25]) if len(head) == 26 else (None, None)


# PNG colour type 4: gray + alpha (Pillow opens a 16-bit one as RGBA).
PNG_GRAY_ALPHA = 4


def _deep_colour(image):
    """Whether Pillow would lose precision on this image (16-bit colour PNG/TIFF,
    or 16-bit gray + alpha)."""
    if image.format == "PNG" and image.mode in ("RGB", "RGBA"):
        return _png_header(image.filename)[0] == 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return len(bits) >= 3 and max(bits) > 8
    return False


def _read_deep_colour(path):
    """A 16-bit colour PNG or TIFF through OpenCV: `H x W x 3|4` uint16, RGB(A)."""
    import cv2

    data = np.fromfile(path, np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise UserError(f"cannot read image {path}: OpenCV could not decode it")
    if array.ndim == 3:
        order = [2, 1, 0, 3][: array.shape[-1]] if array.shape[-1] in (3, 4) else None
        array = array[..., order] if order else array
    if array.ndim == 3 and array.shape[-1] == 4 and _png_header(path)[1] == PNG_GRAY_ALPHA:
        array = array[..., [0, 3]]  # OpenCV expands gray + alpha to four channels
    return array


@contextlib.contextmanager
def _open_image(path):
    """Opens an image file with Pillow (header only), turning every failure into a one-line
    `UserError`; Pillow's own bomb check is lifted, `_check_pixels` applies ours instead."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such image file: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"empty image file: {path}")
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            _check_pixels(path, *image.size)
            yield image
    except UserError:
        raise
    except Exception as error:  # PIL raises many types for corrupt data
        raise UserError(f"cannot read image {path}: {first_line(error)}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_raw(path):
    """Reads an image file without rescaling, once, within the pixel limit.

    Returns:
        `(array, scale)`: an `H x W x C` array (C = 1 or 3, alpha dropped) of
        dtype uint8, uint16 or float32, and the value that means white
        (255, 65535 or 1.0).

    Raises:
        UserError: missing, empty, unreadable or corrupt file, or an image
            over `MAX_PIXELS`.
    """
    array, _, scale = read_with_alpha(path)
    return array, scale


def read_with_alpha(path):
    """As `read_raw`, with the alpha channel set aside: `(array, alpha, scale)`,
    `alpha` an `H x W x 1` array of the image's dtype, or None."""
    from PIL import ImageOps

    with _open_image(path) as image:
        if _deep_colour(image):
            array, scale = _read_deep_colour(path), 65535
        else:
            array, scale = _decode(ImageOps.exif_transpose(image), path)
    if array.ndim == 2:
        array = array[:, :, None]
    alpha = None
    if array.shape[-1] in (2, 4):  # gray + alpha, RGB + alpha
        array, alpha = array[..., :-1], np.ascontiguousarray(array[..., -1:])
    if array.size == 0:
        raise UserError(f"empty image: {path}")
    return np.ascontiguousarray(array), alpha, scale


def read_metadata(path):
    """What a restored copy of an image file should carry over besides its pixels.

    Returns:
        A dict: `icc_profile` (bytes or None), `exif` (bytes or None; the
        orientation tag set to 1, because `read_raw` applies the rotation to
        the pixels) and `frames` (pages of a TIFF, frames of an animation: only
        the first is read).
    """
    with _open_image(path) as image:
        icc = image.info.get("icc_profile") or None
        exif = image.getexif()
        if ORIENTATION in exif:
            exif[ORIENTATION] = 1
        return {"icc_profile": icc, "exif": exif.tobytes() if len(exif) else None,
                "frames": int(getattr(image, "n_frames", 1))}


ORIENTATION = 0x0112  # the EXIF tag


def image_info(path, verify=False):
    """`(width, height, channels)` of an image file from its header, without decoding.

    Raises the same one-line `UserError`s as `read_raw` for a missing,
    empty, unreadable or oversized file; `verify=True` also checks the
    compressed data (Pillow's `verify`: PNG checksums, truncation).
    """
    with _open_image(path) as image:
        width, height = image.size
        mode = image.mode
        transparent_palette = mode == "P" and "transparency" in image.info
        if width * height == 0:
            raise UserError(f"empty image: {path}")
        if verify:
            image.verify()
    gray = mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16")
    gray = gray or (str(path).lower().endswith(".png") and _png_header(path)[1] == PNG_GRAY_ALPHA)
    return width, height, 1 if gray and not transparent_palette else 3


# How far float image values may stray outside [0, 1] (noisy data does, and
# evaluation keeps it unclipped) before they are taken for another scale
# (e.g. 0-255 stored as floats) and refused; files and arrays alike.
FLOAT_SLACK = 4.0


def _decode(image, path):
    mode = image.mode
    if mode in ("1", "L", "LA", "RGB", "RGBA"):
        return np.array(image.convert("L") if mode == "1" else image), 255
    if mode.startswith("I;16") or mode == "I":
        array = np.array(image)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise UserError(
                f"{Path(path).name} holds 32-bit integers from {array.min()} to {array.max()}; only "
                "8- and 16-bit images are restored (values 0 to 65535): convert it to 16 bits"
            )
        return array.astype(np.uint16), 65535
    if mode == "F":
        array = np.array(image, np.float32)
        if not np.all(np.isfinite(array)):
            raise UserError(f"{Path(path).name} holds NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < -FLOAT_SLACK or high > 1.0 + FLOAT_SLACK:
            raise UserError(
                f"{Path(path).name} is a float image with values from {low:g} to {high:g}; "
                "float images must be on the 0-1 scale"
            )
        return array, 1.0
    if mode == "P" and "transparency" in image.info:
        return np.array(image.convert("RGBA")), 255
    return np.array(image.convert("RGB")), 255


def convert_channels(array, channels):
    """Converts an image (`H x W x C`, or a batch `N x H x W x C`) between gray (1)
    and colour (3): the one place where channels are converted.

    Colour to gray uses BT.601 luma (`LUMA_WEIGHTS`, as Pillow's "L" mode);
    gray to colour repeats the channel. Integer arrays stay integer (luma
    rounded), floats keep their dtype.
    """
    if channels is None or array.shape[-1] == channels:
        return array
    if channels == 3 and array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1)
    if channels == 1 and array.shape[-1] == 3:
        luma = array.astype(np.float64) @ LUMA_WEIGHTS
        if np.issubdtype(array.dtype, np.integer):
            luma = np.round(luma)
        return luma.astype(array.dtype)[..., None]
    raise UserError(f"channels must be 1 or 3, got {channels}")


def load_image(path, channels=None):
    """Loads an image file as float32 in [0, 1].

    Reads 8- and 16-bit PNGs (gray and colour), palette images, JPEG, BMP,
    TIFF and whatever else Pillow reads; an alpha channel is dropped.

    Args:
        path: the image file.
        channels: `None` keeps the file's (1 for gray, 3 for colour); 1 or 3
            converts (BT.601 luma, or a repeated gray channel).

    Returns:
        A float32 array of shape `H x W x C`.

    Raises:
        keras_lnca.errors.UserError: a missing, empty or corrupt file, with a
            one-line message.

    Example:

    >>> from keras_lnca.data import load_image
    >>> image = load_image("set12/01.png")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((256, 256, 1), dtype('float32'))
    """
    if channels not in (None, 1, 3):
        raise UserError(f"channels must be None, 1 or 3, got {channels!r}")
    array, scale = read_raw(path)
    image = np.clip(array.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    return convert_channels(image, channels)


def list_images(folder):
    """The image files directly inside `folder`, sorted by name.

    Args:
        folder: a directory.

    Returns:
        A sorted list of `pathlib.Path` (files with an image extension;
        hidden files skipped).

    Raises:
        keras_lnca.errors.UserError: `folder` is not a directory.

    Example:

    >>> from keras_lnca.data import list_images
    >>> [p.name for p in list_images("set12")][:2]  # doctest: +SKIP
    ['01.png', '02.png']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"no such folder: {folder}")
    return sorted(
        (p for p in folder.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )


# Extensions whose files keep 16 bits per channel when written.
DEEP_EXTENSIONS = (".png", ".tif", ".tiff")
ALPHA_EXTENSIONS = (".png", ".tif", ".tiff", ".webp")


def writable_extension(path):
    """Raises a one-line `UserError` unless an image writer knows `path`'s extension."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS or suffix not in Image.registered_extensions():
        raise UserError(
            f"unknown image format for {path} (use one of .png, .jpg, .tif, .bmp, .webp)"
        )


# What each format's writer can carry over from the input (Pillow's keywords).
METADATA_FORMATS = {
    "JPEG": ("icc_profile", "exif"), "PNG": ("icc_profile", "exif"),
    "WEBP": ("icc_profile", "exif"), "TIFF": ("icc_profile", "exif"),
}


def save_image(path, array, metadata=None, overwrite=True, keep_float=False):
    """Writes an image atomically: float in [0, 1] as 8-bit, uint16 as 16-bit.

    The image is written to a temporary file next to `path`, then moved to
    it, so `path` never holds a partial image. uint16 arrays keep their
    depth in PNG and TIFF files (other formats get 8 bits).

    Args:
        path: the output file; its extension picks the format (`.png`,
            `.jpg`, ...).
        array: `H x W`, `H x W x 1` or `H x W x 3` floats (clipped to [0, 1]),
            or a uint8 or uint16 array; a fourth (or, for gray, second)
            channel is alpha.
        metadata: a dict as `read_metadata` returns: its `icc_profile` and
            `exif` are written where the format holds them.
        overwrite: False creates `path` exclusively: if it exists, or another
            process creates it meanwhile, nothing is written and a `UserError`
            says so.
        keep_float: write a float gray image to a `.tif` as 32-bit floats
            (unclipped) instead of 8 bits.

    Returns:
        The metadata entries (`"icc_profile"`, `"exif"`) given but not
        written, because the format or depth cannot hold them.

    Example:

    >>> import numpy as np
    >>> from keras_lnca.data import save_image
    >>> save_image("/tmp/gray.png", np.full((8, 8), 0.5))  # doctest: +SKIP
    []
    """
    from PIL import Image

    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)) or array.size == 0:
        raise UserError(f"cannot save an image of shape {array.shape}")
    writable_extension(path)
    suffix = path.suffix.lower()
    given = [key for key in ("icc_profile", "exif") if (metadata or {}).get(key)]
    if array.ndim == 3 and array.shape[-1] in (2, 4) and suffix not in ALPHA_EXTENSIONS:
        raise UserError(f"{path.name}: {suffix} files hold no alpha channel (use .png, .tif or .webp)")
    if array.dtype == np.uint16 and suffix in DEEP_EXTENSIONS:
        import cv2

        if array.ndim == 3 and array.shape[-1] == 2 and suffix == ".png":
            encoded = _png_gray_alpha16(array)  # OpenCV writes no 16-bit gray + alpha
            atomic_write(path, lambda f: f.write(encoded), overwrite=overwrite)
            return given
        if array.ndim == 3 and array.shape[-1] == 2:  # a TIFF: gray + alpha kept as RGBA
            array = array[..., [0, 0, 0, 1]]
        bgr = array[..., [2, 1, 0, 3][: array.shape[-1]]] if array.ndim == 3 else array
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(bgr))
        if not ok:
            raise UserError(f"cannot encode a 16-bit image as {suffix}")
        atomic_write(path, lambda f: f.write(encoded.tobytes()), overwrite=overwrite)
        return given  # OpenCV's encoder writes no profile or EXIF
    if keep_float and array.dtype.kind == "f" and array.ndim == 2 and suffix in (".tif", ".tiff"):
        picture = Image.fromarray(array.astype(np.float32), "F")
    else:
        if array.dtype == np.uint16:
            array = np.round(array / 257.0).astype(np.uint8)
        elif array.dtype != np.uint8:
            array = np.round(np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0) * 255.0)
            array = array.astype(np.uint8)
        picture = Image.fromarray(array)
    image_format = Image.registered_extensions()[suffix]
    kept = [key for key in given if key in METADATA_FORMATS.get(image_format, ())]
    options = {key: metadata[key] for key in kept}
    atomic_write(path, lambda f: picture.save(f, format=image_format, **options), overwrite=overwrite)
    return [key for key in given if key not in kept]


def _png_gray_alpha16(array):
    """A 16-bit gray + alpha PNG (colour type 4) from an `H x W x 2` uint16 array."""
    import struct
    import zlib

    height, width, _ = array.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8),
                           array.astype(">u2").reshape(height, -1).view(np.uint8)], axis=1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, PNG_GRAY_ALPHA, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def atomic_write(path, write, overwrite=True):
    """Calls `write(binary_file)` on a temporary file, then moves it to `path`.

    On any error the temporary file is removed and `path` is left untouched.
    `overwrite=False` creates `path` exclusively (a hard link, which fails if
    the name exists): a file that appeared since the caller checked, e.g.
    one written by a second run into the same folder, is never replaced.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"no such folder: {path.parent}")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.chmod(temporary, _final_mode(path))
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_exclusively(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        _raise_write_error(path, error)
        raise


def _link_exclusively(temporary, path):
    """Gives the finished `temporary` file the name `path` unless that name exists."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise UserError(f"{path} exists (another run wrote it meanwhile?); pass --overwrite "
                        "to replace it") from None
    except OSError:  # a file system without hard links: claim the name, then fill it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise UserError(f"{path} exists (another run wrote it meanwhile?); pass --overwrite "
                            "to replace it") from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _final_mode(path):
    """The permission bits a written file gets: those of the file it replaces, else
    what a plain `open` would give (0666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _raise_write_error(path, error):
    """An OS error while writing `path` (a full disk, a permission) as a one-line
    `UserError` that names the file; other errors go on as they are."""
    if isinstance(error, OSError):
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same suffix); on success moves it to `path`.

    For writers that want a file or folder name (`model.save`, `np.savez`, a
    SavedModel): a killed or failed write leaves `path` as it was and no
    temporary file behind. A folder written there replaces an existing
    folder at `path` only once it is complete.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"no such folder: {path.parent}")
    suffix = "".join(path.suffixes) or ".tmp"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        try:
            yield temporary
        except OSError as error:
            _raise_write_error(path, error)
            raise
        if temporary.is_file():
            os.chmod(temporary, _final_mode(path))
        if temporary.is_dir() and path.is_dir() and not path.is_symlink():
            previous = path.with_name(f".{path.name}.{os.getpid()}.previous")
            os.replace(path, previous)
            try:
                os.replace(temporary, path)
            except OSError:
                os.replace(previous, path)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()
