"""A minimal decoder for 16-bit colour PNGs, which Pillow reads as 8-bit.

Handles non-interlaced PNGs of bit depth 16 with colour type 2 (RGB) or 6
(RGBA); everything else goes through Pillow.
"""

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def header(path):
    """`(width, height, bit_depth, colour_type, interlace)` of a PNG, or None."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return width, height, depth, colour, interlace


def is_16bit_colour(path):
    """Whether Pillow would lose precision reading this PNG."""
    info = header(path)
    return info is not None and info[2] == 16 and info[3] in (2, 6) and info[4] == 0


def _unfilter(rows, bpp):
    """Undoes the PNG scanline filters; `rows` is `[H, 1 + stride]` uint8."""
    height, stride = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((height, stride), np.int32)
    previous = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 0xFF
        else:
            current = line.copy()
            for x in range(stride):
                left = current[x - bpp] if x >= bpp else 0
                up = previous[x]
                if kind == 1:
                    current[x] = (current[x] + left) & 0xFF
                elif kind == 3:
                    current[x] = (current[x] + ((left + up) >> 1)) & 0xFF
                elif kind == 4:
                    corner = previous[x - bpp] if x >= bpp else 0
                    estimate = left + up - corner
                    da, db, dc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                    predictor = left if da <= db and da <= dc else (up if db <= dc else corner)
                    current[x] = (current[x] + predictor) & 0xFF
                else:
                    raise ValueError(f"bad PNG filter type {kind}")
        out[y] = current
        previous = current
    return out.astype(np.uint8)


def read(path):
    """Decodes a 16-bit RGB/RGBA PNG into a `uint16` `H x W x (3|4)` array."""
    width, height, _, colour, _ = header(path)
    channels = 3 if colour == 2 else 4
    data = bytearray()
    with open(path, "rb") as f:
        f.read(8)
        while True:
            length_bytes = f.read(8)
            if len(length_bytes) < 8:
                raise ValueError("truncated PNG")
            length, kind = struct.unpack(">I4s", length_bytes)
            chunk = f.read(length)
            f.read(4)  # CRC
            if kind == b"IDAT":
                data += chunk
            elif kind == b"IEND":
                break
    raw = np.frombuffer(zlib.decompress(bytes(data)), np.uint8)
    stride = width * channels * 2
    if raw.size != height * (stride + 1):
        raise ValueError("PNG data size does not match its header")
    pixels = _unfilter(raw.reshape(height, stride + 1), channels * 2)
    return pixels.reshape(height, width * channels, 2).view(">u2")[..., 0].reshape(
        height, width, channels
    ).astype(np.uint16)
