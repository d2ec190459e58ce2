"""Plain embeddings to measure the model against: a colour histogram and downscaled pixels."""

import numpy as np

BINS = 8  # per channel: 8 x 8 x 8 = 512 colours
PIXELS = (16, 12)  # height, width of the downscaled image: the catalog's 4:3 portrait shape
EPSILON = 1e-12


def colour_histogram(images: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each image's share of pixels in each of bins^3 RGB cubes, square-rooted (Hellinger).

    The square root makes every row unit length, so the inner product of two rows is their
    Bhattacharyya coefficient.

    Args:
        images: uint8 (N, H, W, 3), RGB.
        bins: cubes per channel; a divisor of 256.

    Returns:
        float32 (N, bins^3), unit rows.
    """
    count, height, width, _ = images.shape
    cube = (images // (256 // bins)).astype(np.int32)
    colour = (cube[..., 0] * bins + cube[..., 1]) * bins + cube[..., 2]
    flat = (colour.reshape(count, -1) + np.arange(count, dtype=np.int32)[:, None] * bins**3).ravel()
    counts = np.bincount(flat, minlength=count * bins**3).reshape(count, bins**3)
    return np.sqrt(counts / (height * width)).astype(np.float32)


def downscaled(images: np.ndarray, size: tuple[int, int] = PIXELS) -> np.ndarray:
    """Each image shrunk by area averaging to `size` (height, width), as one row in [0, 1].

    Args:
        images: uint8 (N, H, W, 3), RGB.
        size: the output height and width.

    Returns:
        float32 (N, height * width * 3).
    """
    _, height, width, _ = images.shape
    rows, columns = _area_weights(height, size[0]), _area_weights(width, size[1])
    pixels = images.astype(np.float32) / 255
    small = np.einsum("yh,nhwc,xw->nyxc", rows, pixels, columns, optimize=True)
    return small.reshape(len(images), -1).astype(np.float32)


def centred(vectors: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Rows minus `mean` (by default their own mean row), then scaled to unit length (a zero
    row stays zero)."""
    shifted = vectors - (vectors.mean(axis=0) if mean is None else mean)
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    return (shifted / np.maximum(norms, EPSILON)).astype(np.float32)


def _area_weights(source: int, target: int) -> np.ndarray:
    """(target, source): the share of each output cell that each input pixel covers."""
    edges = np.arange(target + 1) * (source / target)
    low, high = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(high, pixels + 1) - np.maximum(low, pixels), 0, None)
    return (overlap / (source / target)).astype(np.float32)
