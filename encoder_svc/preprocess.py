"""The one image preprocessing shared by training and serving: bytes -> RGB array -> tensor."""

import dataclasses
import io
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from common.errors import InvalidArgument

WHITE = (255, 255, 255)
# trimmed(): how far from the background a pixel may be and still be background; the share of
# the frame that must be background; the share of a row or column that must be product for it
# to count; the smallest product kept (share of the area); the margin left around it; the
# fewest pixels across the grid a photo is looked at on.
TRIM_TOLERANCE = 28
TRIM_PLAIN_FRAME = 0.6
TRIM_MIN_SHARE = 0.03
TRIM_MIN_AREA = 0.05
TRIM_MARGIN = 0.03
TRIM_GRID = 120


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one image may cost before it is refused."""

    max_image_bytes: int = 8_000_000
    max_pixels: int = 25_000_000


@dataclasses.dataclass(frozen=True)
class PreprocessParams:
    """The model's input: size (the catalog's photos are 60 wide, 80 high), normalisation, and
    whether the product is first cut out of a plain background (`trim`; versions trained
    before it existed have it off)."""

    height: int = 80
    width: int = 60
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    trim: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PreprocessParams":
        return cls(
            height=int(raw["height"]),
            width=int(raw["width"]),
            mean=_triple(raw["mean"]),
            std=_triple(raw["std"]),
            trim=bool(raw.get("trim", False)),
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
            return fit(_to_rgb(image), params)
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
    if pixels.shape[:2] == (params.height, params.width) and not params.trim:
        return pixels
    return fit(Image.fromarray(pixels), params)


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


def trimmed(image: Image.Image) -> Image.Image:
    """The product cut out of a plain background: a shopper's photo padded on a tinted wall, or
    a catalog photo with a wide white margin, becomes the product alone.

    The background is the median colour of the outermost pixels, and white (the colour a turned
    photo's corners are filled with). Where most of that frame is near one of the two, the
    image is cropped to the rows and columns holding enough pixels unlike both, plus a small
    margin. (A tinted photo turned afterwards keeps its tint: its frame is mostly the white
    corners, whose median wins.) A photo whose frame is not plain (a model on a street), or
    whose product would be tiny, is kept whole.
    """
    step = max(1, min(image.size) // TRIM_GRID)  # a large photo is looked at on a coarser grid
    pixels = np.asarray(image)[::step, ::step].astype(np.int16)
    frame = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(frame, axis=0).astype(np.int16)
    near = (_spread(np.abs(frame - background)) <= TRIM_TOLERANCE) | (
        _spread(255 - frame) <= TRIM_TOLERANCE
    )
    if near.mean() < TRIM_PLAIN_FRAME:
        return image
    foreground = (_spread(np.abs(pixels - background)) > TRIM_TOLERANCE) & (
        _spread(255 - pixels) > TRIM_TOLERANCE
    )
    height, width = foreground.shape
    rows = np.flatnonzero(np.count_nonzero(foreground, axis=1) > TRIM_MIN_SHARE * width)
    cols = np.flatnonzero(np.count_nonzero(foreground, axis=0) > TRIM_MIN_SHARE * height)
    if len(rows) == 0 or len(cols) == 0:
        return image
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (bottom - top) * (right - left) < TRIM_MIN_AREA * height * width:
        return image
    top, bottom, left, right = (int(edge) * step for edge in (top, bottom, left, right))
    width, height = image.size
    margin = round(TRIM_MARGIN * max(bottom - top, right - left))
    box = (
        max(left - margin, 0),
        max(top - margin, 0),
        min(right + margin, width),
        min(bottom + margin, height),
    )
    return image if box == (0, 0, width, height) else image.crop(box)


def _spread(values: np.ndarray) -> np.ndarray:
    """The largest of the three channels of each pixel (faster than .max(axis=-1))."""
    return np.maximum(np.maximum(values[..., 0], values[..., 1]), values[..., 2])


def fit(image: Image.Image, params: PreprocessParams) -> np.ndarray:
    """Cuts out the product if `params.trim`, pads with white to the target aspect ratio
    (keeping the whole object), then resizes."""
    if params.trim:
        image = trimmed(image)
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
