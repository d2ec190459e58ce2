"""Image bytes for the tests: encoded pictures, random photos, and PNGs whose header claims
more pixels than they carry."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    """The image's bytes in `fmt` (PNG, JPEG, ...)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def noise(seed: int, fmt: str = "PNG") -> bytes:
    """An 80x60 (height x width) RGB photo of random pixels, encoded in `fmt`."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(80, 60, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), fmt)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` but carries almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_data = zlib.compress(b"\x00" * 64)
    idat = b"IDAT" + idat_data
    return (
        b"\x89PNG\r\n\x1a\n"
        + ihdr
        + struct.pack(">I", len(idat_data))
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )
