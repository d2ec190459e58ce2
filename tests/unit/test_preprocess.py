"""The shared preprocessing: what decode() accepts, what it refuses and why, and normalise()."""

import io

import numpy as np
import pytest
from PIL import Image

from common.errors import InvalidArgument
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from tests.images import encode, png_header_only

PARAMS = PreprocessParams()
LIMITS = Limits(max_image_bytes=1_000_000, max_pixels=4_000_000)


def refusal(data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode(data, limits, PARAMS)
    return str(caught.value)


def test_zero_bytes_are_refused() -> None:
    assert "empty" in refusal(b"")


def test_text_is_not_an_image() -> None:
    assert "not an image" in refusal(b"hello, this is plain text and not a picture")


def test_too_many_bytes_are_refused_before_decoding() -> None:
    data = encode(Image.new("RGB", (60, 80), (10, 20, 30)))
    message = refusal(data, Limits(max_image_bytes=len(data) - 1, max_pixels=LIMITS.max_pixels))
    assert str(len(data)) in message and "limit" in message


def test_huge_claimed_dimensions_are_refused_from_the_header() -> None:
    message = refusal(png_header_only(5_000, 5_000))
    assert "5000x5000" in message and "pixels" in message


def test_pillow_decompression_bomb_is_refused() -> None:
    # Beyond Pillow's own bomb limit as well as ours.
    message = refusal(png_header_only(30_000, 30_000), Limits(10**9, 10**10))
    assert "bomb" in message


def test_truncated_jpeg_is_refused() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (80, 60, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "JPEG")
    assert "truncated or corrupt" in refusal(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("mode", "size", "fmt"),
    [
        ("RGB", (60, 80), "JPEG"),
        ("RGBA", (60, 80), "PNG"),
        ("L", (33, 97), "JPEG"),
        ("LA", (120, 40), "PNG"),
        ("P", (7, 5), "GIF"),
        ("CMYK", (200, 300), "JPEG"),
        ("I;16", (64, 64), "PNG"),
        ("1", (61, 79), "PNG"),
    ],
)
def test_any_mode_and_size_becomes_model_sized_rgb(
    mode: str, size: tuple[int, int], fmt: str
) -> None:
    image = decode(encode(Image.new(mode, size), fmt), LIMITS, PARAMS)
    assert image.shape == (PARAMS.height, PARAMS.width, 3)
    assert image.dtype == np.uint8


def test_transparent_pixels_become_white() -> None:
    image = decode(encode(Image.new("RGBA", (60, 80), (255, 0, 0, 0))), LIMITS, PARAMS)
    assert (image == 255).all()


def test_wide_image_is_padded_with_white_not_stretched() -> None:
    image = decode(encode(Image.new("RGB", (240, 80), (0, 0, 0))), LIMITS, PARAMS)
    middle_row = PARAMS.height // 2
    assert (image[0] == 255).all() and (image[-1] == 255).all()
    assert (image[middle_row] < 10).all()


def test_catalog_sized_image_keeps_its_pixels() -> None:
    pixels = np.random.default_rng(1).integers(0, 255, (80, 60, 3), dtype=np.uint8)
    assert (decode(encode(Image.fromarray(pixels)), LIMITS, PARAMS) == pixels).all()


def test_catalog_sized_jpeg_has_the_pixels_pillow_decodes() -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (80, 60, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "JPEG")
    with Image.open(io.BytesIO(data)) as image:
        assert (decode(data, LIMITS, PARAMS) == np.asarray(image.convert("RGB"))).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_large_wide_photo_is_scaled_and_padded_alike_in_any_format(fmt: str) -> None:
    image = decode(encode(Image.new("RGB", (960, 320), (0, 0, 0)), fmt), LIMITS, PARAMS)
    assert image.shape == (PARAMS.height, PARAMS.width, 3)
    assert (image[0] == 255).all() and (image[PARAMS.height // 2] < 10).all()


def test_a_jpeg_over_the_pixel_limit_is_refused_naming_its_size() -> None:
    data = encode(Image.new("RGB", (2100, 2000)), "JPEG")
    assert "2100x2000" in refusal(data)


def test_normalise_gives_channels_first_float32_with_the_params() -> None:
    params = PreprocessParams(mean=(0.5, 0.0, 1.0), std=(0.5, 1.0, 2.0))
    batch = np.full((2, params.height, params.width, 3), 255, dtype=np.uint8)
    tensor = normalise(batch, params)
    assert tensor.shape == (2, 3, params.height, params.width)
    assert tensor.dtype == np.float32
    assert np.allclose(tensor[:, 0], 1.0) and np.allclose(tensor[:, 1], 1.0)
    assert np.allclose(tensor[:, 2], 0.0)


def test_params_round_trip_through_a_dict() -> None:
    params = PreprocessParams(mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert PreprocessParams.from_dict(params.to_dict()) == params
