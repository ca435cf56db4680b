"""Before/after pictures: labelled panels side by side, with a zoomed detail.

Used by `lnca demo` and by the comparison pictures in `docs/`. Numpy and
Pillow only.
"""

import numpy as np

GAP = 4
LABEL_HEIGHT = 20


def _to_rgb8(image):
    image = np.asarray(image, np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def smoothest_window(image, size):
    """`(top, left)` of the `size` x `size` window with the least detail.

    Flat regions are where a denoiser's artefacts (blocks, mottling) show.
    """
    gray = np.asarray(image, np.float64)
    gray = gray.mean(axis=-1) if gray.ndim == 3 else gray
    height, width = gray.shape
    size = min(size, height, width)
    step = max(1, size // 4)
    best, where = None, (0, 0)
    for top in range(0, height - size + 1, step):
        for left in range(0, width - size + 1, step):
            window = gray[top : top + size, left : left + size]
            detail = np.abs(np.diff(window, axis=0)).mean() + np.abs(np.diff(window, axis=1)).mean()
            if best is None or detail < best:
                best, where = detail, (top, left)
    return where


def comparison(panels, labels, zoom=None, zoom_size=64, zoom_factor=3):
    """A picture of `panels` side by side, each labelled, with an optional zoomed row.

    Args:
        panels: float images in [0, 1] of one shape (gray or RGB).
        labels: one caption per panel.
        zoom: `(top, left)` of a detail window shown enlarged under every
            panel (nearest neighbour, so pixels stay visible), or None.
        zoom_size: side of the detail window, in pixels.
        zoom_factor: enlargement of the detail.

    Returns:
        A uint8 RGB array.
    """
    from PIL import Image
    from PIL import ImageDraw
    from PIL import ImageFont

    images = [_to_rgb8(p) for p in panels]
    height, width = images[0].shape[:2]
    rows = [np.concatenate(_with_gaps(images), axis=1)]
    if zoom is not None:
        top, left = zoom
        size = min(zoom_size, height - top, width - left)
        side = size * zoom_factor
        details = []
        for image in images:
            crop = image[top : top + size, left : left + size]
            crop = np.repeat(np.repeat(crop, zoom_factor, axis=0), zoom_factor, axis=1)
            canvas = np.full((side, width, 3), 255, np.uint8)
            canvas[:, : min(side, width)] = crop[:, : min(side, width)]
            details.append(canvas)
        rows.append(np.full((GAP, rows[0].shape[1], 3), 255, np.uint8))
        rows.append(np.concatenate(_with_gaps(details), axis=1))
        for image in images:  # mark the window on the full views
            _frame(image, top, left, size)
        rows[0] = np.concatenate(_with_gaps(images), axis=1)
    body = np.concatenate(rows, axis=0)
    picture = np.full((body.shape[0] + LABEL_HEIGHT, body.shape[1], 3), 255, np.uint8)
    picture[LABEL_HEIGHT:] = body
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for i, label in enumerate(labels):
        draw.text((i * (width + GAP) + 2, 2), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _with_gaps(images):
    gap = np.full((images[0].shape[0], GAP, 3), 255, np.uint8)
    out = [images[0]]
    for image in images[1:]:
        out += [gap, image]
    return out


def _frame(image, top, left, size, colour=(255, 64, 0)):
    bottom, right = top + size - 1, left + size - 1
    image[top, left : right + 1] = colour
    image[bottom, left : right + 1] = colour
    image[top : bottom + 1, left] = colour
    image[top : bottom + 1, right] = colour
