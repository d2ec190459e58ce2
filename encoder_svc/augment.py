"""Training augmentations: the ways a shopper's photo of a product differs from the catalog's.

Each training image (already decoded, and trimmed if the recipe trims) is changed the way such
photos differ: a part cropped, mirrored, lit and contrasted otherwise, padded on a tinted
background, turned a few degrees, taken smaller, saved as a rough JPEG. The changed image then
goes through the serving path's own trim-and-fit (preprocess.fit), so the model learns from
what it will be given.
"""

import dataclasses

import numpy as np
import simplejpeg
from PIL import Image, ImageEnhance, ImageOps

from encoder_svc.preprocess import WHITE, PreprocessParams, fit


@dataclasses.dataclass(frozen=True)
class Augment:
    """How often each change is drawn (0 turns it off) and its range."""

    flip: float = 0.5
    crop: float = 0.4
    crop_share: tuple[float, float] = (0.7, 0.95)  # of each side
    light: float = 0.5
    light_range: tuple[float, float] = (0.65, 1.35)  # brightness and contrast factors
    pad: float = 0.3
    pad_share: tuple[float, float] = (0.05, 0.35)  # of the longer side, on every side
    rotate: float = 0.3
    rotate_degrees: float = 10.0
    shrink: float = 0.2
    shrink_factor: tuple[float, float] = (0.5, 0.9)  # downscaled, then back up by fit()
    jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def none(cls) -> "Augment":
        """No change but the mirror."""
        return cls(crop=0, light=0, pad=0, rotate=0, shrink=0, jpeg=0)


def augmented(
    images: np.ndarray, augment: Augment, params: PreprocessParams, rng: np.random.Generator
) -> np.ndarray:
    """A changed copy of a batch of decoded images (uint8 N x H x W x 3), each image's changes
    drawn from `rng`."""
    return np.stack([_changed(image, augment, params, rng) for image in images])


def _changed(
    pixels: np.ndarray, augment: Augment, params: PreprocessParams, rng: np.random.Generator
) -> np.ndarray:
    image = Image.fromarray(pixels)
    reshaped = False
    if rng.random() < augment.crop:
        share = rng.uniform(*augment.crop_share, size=2)
        width, height = round(image.width * share[0]), round(image.height * share[1])
        left = int(rng.integers(0, image.width - width + 1))
        top = int(rng.integers(0, image.height - height + 1))
        image, reshaped = image.crop((left, top, left + width, top + height)), True
    if rng.random() < augment.light:
        low, high = augment.light_range
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(low, high))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(low, high))
    if rng.random() < augment.pad:
        border = round(max(image.size) * rng.uniform(*augment.pad_share))
        tint = tuple(int(c) for c in rng.integers(150, 256, size=3))
        image, reshaped = ImageOps.expand(image, border=border, fill=tint), True
    if rng.random() < augment.rotate:
        degrees = rng.uniform(-augment.rotate_degrees, augment.rotate_degrees)
        image = image.rotate(degrees, Image.Resampling.BILINEAR, expand=True, fillcolor=WHITE)
        reshaped = True
    if rng.random() < augment.shrink:
        factor = rng.uniform(*augment.shrink_factor)
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image, reshaped = image.resize(size, Image.Resampling.BILINEAR), True
    out = fit(image, params) if reshaped else np.asarray(image, dtype=np.uint8)
    if rng.random() < augment.jpeg:
        quality = int(rng.integers(*augment.jpeg_quality, endpoint=True))
        encoded = simplejpeg.encode_jpeg(np.ascontiguousarray(out), quality, colorspace="RGB")
        out = simplejpeg.decode_jpeg(encoded, colorspace="RGB")
    if rng.random() < augment.flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)
