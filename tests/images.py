"""Image bytes for the tests: PNGs whose header claims more pixels than they carry."""

import struct
import zlib


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
