"""Vectors on the wire: little-endian float32 bytes, read without copies."""

import numpy as np

from common.errors import InvalidArgument


def to_bytes(vector: np.ndarray) -> bytes:
    """Encodes a float vector (or matrix row) as little-endian float32 bytes."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes, dim: int | None = None) -> np.ndarray:
    """Decodes little-endian float32 bytes, checking the length and, if given, the dimension.

    Raises:
        InvalidArgument: the bytes are empty, not a whole number of floats, of the wrong
            dimension, or hold NaN or infinity.
    """
    if not data or len(data) % 4:
        raise InvalidArgument(f"vector of {len(data)} bytes is not a float32 vector")
    vector = np.frombuffer(data, dtype="<f4")
    if dim is not None and vector.shape[0] != dim:
        raise InvalidArgument(f"vector has dimension {vector.shape[0]}, expected {dim}")
    if not np.isfinite(vector).all():
        raise InvalidArgument("vector holds NaN or infinity")
    return vector
