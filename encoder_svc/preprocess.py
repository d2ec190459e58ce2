"""The one image preprocessing shared by training and serving: bytes -> RGB array -> tensor."""

import dataclasses
import io
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from common.errors import InvalidArgument

WHITE = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one image may cost before it is refused."""

    max_image_bytes: int = 8_000_000
    max_pixels: int = 25_000_000


@dataclasses.dataclass(frozen=True)
class PreprocessParams:
    """The model's input: size (the catalog's photos are 60 wide, 80 high) and normalisation."""

    height: int = 80
    width: int = 60
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PreprocessParams":
        return cls(
            height=int(raw["height"]),
            width=int(raw["width"]),
            mean=_triple(raw["mean"]),
            std=_triple(raw["std"]),
        )


def decode(data: bytes, limits: Limits, params: PreprocessParams) -> np.ndarray:
    """Decodes an encoded image into the model's input size.

    Args:
        data: the encoded image (JPEG, PNG, GIF, WebP, ... whatever Pillow reads).
        limits: the largest encoded size and decoded pixel count accepted.
        params: the target size.

    Returns:
        uint8 array of shape (params.height, params.width, 3), RGB.

    Raises:
        InvalidArgument: the bytes are empty, too many, not an image, too large once decoded,
            truncated or corrupt.
    """
    if not data:
        raise InvalidArgument("image is empty (0 bytes)")
    if len(data) > limits.max_image_bytes:
        raise InvalidArgument(
            f"image is {len(data)} bytes, more than the limit of {limits.max_image_bytes}"
        )
    if simplejpeg.is_jpeg(data) and (pixels := _decode_jpeg(data, limits, params)) is not None:
        return pixels
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(image, limits)
            image.draft("RGB", (params.width, params.height))
            image.load()
            return _fit(_to_rgb(image), params)
    except UnidentifiedImageError as error:
        raise InvalidArgument("bytes are not an image in any known format") from error
    except Image.DecompressionBombError as error:
        raise InvalidArgument(f"image is a decompression bomb: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidArgument(f"image is truncated or corrupt: {error}") from error


def _decode_jpeg(data: bytes, limits: Limits, params: PreprocessParams) -> np.ndarray | None:
    """A JPEG through libjpeg-turbo directly: the same pixels as through Pillow, about 4x
    faster for catalog-sized photos (23 against 102 us for 60x80), which is most of what the
    encoder spends per image besides the model. Large photos are decoded at a reduced scale,
    as Pillow's draft mode does.

    Returns:
        The image at the model's input size, or None to leave the image to Pillow (which
        also words every refusal: over the pixel limit, CMYK, truncated, corrupt).
    """
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        if not 0 < width * height <= limits.max_pixels:
            return None
        pixels = simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_height=params.height, min_width=params.width
        )
    except ValueError:
        return None
    if pixels.shape[:2] == (params.height, params.width):
        return pixels
    return _fit(Image.fromarray(pixels), params)


def normalise(
    batch: np.ndarray, params: PreprocessParams, out: np.ndarray | None = None
) -> np.ndarray:
    """Turns decoded images into the model's input.

    Args:
        batch: uint8 array (N, H, W, 3), RGB, as `decode` returns them stacked.
        params: the per-channel mean and standard deviation (of pixel values in [0, 1]).
        out: where to write the result (a batch's reserved rows, say); a new array if None.

    Returns:
        float32 array (N, 3, H, W): `out` when given.
    """
    # (x / 255 - mean) / std as one multiply-add per pixel, written straight in NCHW order.
    scale = (1 / (255 * np.asarray(params.std, dtype=np.float64))).astype(np.float32)
    shift = (-np.asarray(params.mean, dtype=np.float64) / params.std).astype(np.float32)
    if out is None:
        out = np.empty((batch.shape[0], 3, *batch.shape[1:3]), dtype=np.float32)
    np.multiply(batch.transpose(0, 3, 1, 2), scale[:, None, None], out=out)
    out += shift[:, None, None]
    return out


def _check_pixels(image: Image.Image, limits: Limits) -> None:
    """Refuses from the header alone, before any pixel is decompressed."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidArgument(f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise InvalidArgument(
            f"image is {width}x{height} = {width * height} pixels, "
            f"more than the limit of {limits.max_pixels} (decompression bomb?)"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparent parts become white like the catalog's backgrounds."""
    if image.mode == "RGB":
        return image
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit grey: scale to 8 bits instead of clipping at 255.
        values = np.clip(np.asarray(image, dtype=np.float64) / 257, 0, 255)
        return Image.fromarray(values.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _fit(image: Image.Image, params: PreprocessParams) -> np.ndarray:
    """Pads with white to the target aspect ratio (keeping the whole object), then resizes."""
    width, height = image.size
    target = params.width / params.height
    if width / height > target:
        padded = (width, max(height, round(width / target)))
    else:
        padded = (max(width, round(height * target)), height)
    if padded != (width, height):
        canvas = Image.new("RGB", padded, WHITE)
        canvas.paste(image, ((padded[0] - width) // 2, (padded[1] - height) // 2))
        image = canvas
    if image.size != (params.width, params.height):
        image = image.resize((params.width, params.height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _triple(values: Any) -> tuple[float, float, float]:
    first, second, third = (float(value) for value in values)
    return (first, second, third)
