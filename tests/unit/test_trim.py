"""The product cut out of a plain background before resizing (PreprocessParams.trim)."""

import numpy as np
from PIL import Image, ImageOps

from encoder_svc.preprocess import Limits, PreprocessParams, decode, trimmed
from tests.images import encode

TRIM = PreprocessParams(trim=True)
GREY_BLUE = (180, 192, 210)


def product_photo() -> Image.Image:
    """A catalog-like photo: a dark two-tone product on white, with a white margin."""
    pixels = np.full((80, 60, 3), 255, np.uint8)
    pixels[12:70, 14:46] = (40, 60, 120)
    pixels[12:30, 14:46] = (150, 30, 30)
    return Image.fromarray(pixels)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_a_product_padded_on_a_tinted_background_decodes_like_the_catalog_photo() -> None:
    photo = product_photo()
    padded = ImageOps.expand(photo, border=18, fill=GREY_BLUE)

    catalog = decode(encode(photo), Limits(), TRIM)
    shopper = decode(encode(padded), Limits(), TRIM)
    untrimmed = decode(encode(padded), Limits(), PreprocessParams())

    assert difference(shopper, catalog) < 8
    assert difference(untrimmed, catalog) > 4 * difference(shopper, catalog)
    assert (shopper[0, 0] > 240).all()  # the tint is gone: what is left is padded with white
    large = padded.resize((padded.width * 3, padded.height * 3), Image.Resampling.BICUBIC)
    assert difference(decode(encode(large), Limits(), TRIM), catalog) < 8  # on a coarser grid


def test_the_cut_keeps_the_whole_product_with_a_small_margin() -> None:
    box = np.asarray(trimmed(product_photo()))
    assert box.shape[0] >= 58 and box.shape[1] >= 32  # the product's 58 x 32 pixels
    assert box.shape[0] <= 58 + 8 and box.shape[1] <= 32 + 8


def test_a_photo_without_a_plain_frame_is_kept_whole() -> None:
    rng = np.random.default_rng(0)
    street = Image.fromarray(rng.integers(0, 256, (80, 60, 3), dtype=np.uint8))
    assert trimmed(street) is street


def test_a_turned_photo_is_cut_to_the_product_whatever_its_white_corners() -> None:
    turned = product_photo().rotate(7, expand=True, fillcolor=(255, 255, 255))
    box = trimmed(turned)
    assert box.width < turned.width * 0.75 and box.height < turned.height * 0.9


def test_versions_from_before_the_trim_keep_their_preprocessing() -> None:
    old = {"height": 80, "width": 60, "mean": [0.5] * 3, "std": [0.25] * 3}
    assert PreprocessParams.from_dict(old).trim is False
    assert PreprocessParams.from_dict(TRIM.to_dict()) == TRIM
    padded = encode(ImageOps.expand(product_photo(), border=18, fill=GREY_BLUE))
    assert (decode(padded, Limits(), PreprocessParams())[40, 0] < 230).any()  # tint kept
