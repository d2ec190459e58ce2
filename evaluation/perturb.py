"""Catalog photos changed the way a shopper's photo of the same product differs from it: cropped,
mirrored, lit and contrasted otherwise, padded on a tinted background, turned a few degrees,
rescaled, saved as a rougher JPEG. Every change is drawn from a seeded generator."""

import io
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

Change = Callable[[Image.Image, np.random.Generator], Image.Image]
BACKGROUNDS = (
    (245, 240, 228),
    (236, 234, 226),
    (196, 206, 222),
    (180, 192, 210),
)  # off-white, grey-blue
JPEG_QUALITY = (35, 85)  # the "jpeg" change's range; otherwise the photo is saved at SAVE_QUALITY
SAVE_QUALITY = 95
MIXES = range(2, 7)  # how many changes a mixed query has


def _crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    share = rng.uniform(0.75, 0.95)
    width, height = round(image.width * share), round(image.height * share)
    left = int(rng.integers(0, image.width - width + 1))
    top = int(rng.integers(0, image.height - height + 1))
    return image.crop((left, top, left + width, top + height))


def _mirror(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(image)


def _light(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    brighter = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Contrast(brighter).enhance(rng.uniform(0.7, 1.3))


def _pad(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    colour = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    border = round(max(image.size) * rng.uniform(0.1, 0.3))
    return ImageOps.expand(image, border=border, fill=colour)


def _rotate(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR, expand=True,
                        fillcolor=(255, 255, 255))  # fmt: skip


def _rescale(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    factor = rng.uniform(0.75, 3.0)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


CHANGES: dict[str, Change] = {
    "crop": _crop,
    "mirror": _mirror,
    "light": _light,
    "pad": _pad,
    "rotate": _rotate,
    "rescale": _rescale,
    "jpeg": lambda image, rng: image,  # applied when saving
}


def changed(photo: bytes, kinds: Sequence[str], rng: np.random.Generator) -> bytes:
    """The photo with each change of `kinds` applied in order, as JPEG bytes."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    for kind in kinds:
        image = CHANGES[kind](image, rng)
    quality = int(rng.integers(*JPEG_QUALITY, endpoint=True)) if "jpeg" in kinds else SAVE_QUALITY
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def plan(count: int, seed: int) -> list[tuple[str, ...]]:
    """The changes of `count` queries, from `seed`: every single change in turn, then mixes of
    two to six, in equal numbers."""
    rng = np.random.default_rng(seed)
    kinds = list(CHANGES)
    drawn: list[tuple[str, ...]] = []
    for n in range(count):
        if n % 2 == 0:
            drawn.append((kinds[(n // 2) % len(kinds)],))
        else:
            size = MIXES[(n // 2) % len(MIXES)]
            drawn.append(tuple(str(k) for k in rng.choice(kinds, size=size, replace=False)))
    return drawn


def label(kinds: Sequence[str]) -> str:
    """The group a query is scored in: its one change, or "mix of N"."""
    return kinds[0] if len(kinds) == 1 else f"mix of {len(kinds)}"
