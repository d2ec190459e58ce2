"""The training augmentations: each change does something, and a seed gives the same batch."""

import dataclasses

import numpy as np
import pytest

from encoder_svc.augment import Augment, augmented
from encoder_svc.batches import Batches
from encoder_svc.preprocess import PreprocessParams

PARAMS = PreprocessParams(trim=True)
OFF = dataclasses.replace(Augment.none(), flip=0.0)


def batch() -> np.ndarray:
    images = np.full((4, 80, 60, 3), 255, np.uint8)
    images[:, 10:72, 12:50] = np.random.default_rng(1).integers(0, 200, (4, 62, 38, 3))
    return images


def test_with_every_change_off_the_images_are_unchanged() -> None:
    images = batch()
    assert np.array_equal(augmented(images, OFF, PARAMS, np.random.default_rng(0)), images)


@pytest.mark.parametrize("change", ["flip", "crop", "light", "pad", "rotate", "shrink", "jpeg"])
def test_each_change_alone_changes_every_image_and_keeps_the_shape(change: str) -> None:
    images = batch()
    out = augmented(images, dataclasses.replace(OFF, **{change: 1.0}), PARAMS,
                    np.random.default_rng(0))  # fmt: skip
    assert out.shape == images.shape and out.dtype == np.uint8
    assert all(not np.array_equal(a, b) for a, b in zip(out, images, strict=True))


def test_the_same_seed_and_step_give_the_same_batch() -> None:
    images = np.concatenate([batch()] * 4)
    order = np.array([[0, 3, 5, 7], [1, 2, 4, 6]])
    batches = Batches(images, order, Augment(), PARAMS, seed=7)
    rows, x = batches[1]
    assert rows.tolist() == [1, 2, 4, 6] and tuple(x.shape) == (4, 3, 80, 60)
    assert np.array_equal(batches[1][1].numpy(), x.numpy())
    assert not np.array_equal(Batches(images, order, Augment(), PARAMS, 8)[1][1].numpy(), x.numpy())


def test_paired_batches_end_with_a_second_changed_copy_of_the_first_rows() -> None:
    images = np.concatenate([batch()] * 4)
    order = np.array([[0, 3, 5, 7], [1, 2, 4, 6]])
    plain = Batches(images, order, OFF, PARAMS, seed=7, pairs=2)
    rows, x = plain[0]
    assert rows.tolist() == [0, 3, 5, 7] and tuple(x.shape) == (6, 3, 80, 60)
    assert np.array_equal(x[4:].numpy(), x[:2].numpy())  # nothing changed: the same photos
    _, changed = Batches(images, order, Augment(crop=1.0), PARAMS, seed=7, pairs=2)[0]
    assert not np.array_equal(changed[4:].numpy(), changed[:2].numpy())
