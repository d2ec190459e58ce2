"""The evaluation's arithmetic on tiny hand-computed cases: search, P@k, mAP@10, the baselines."""

import numpy as np
import pytest

from common.errors import InvalidArgument
from encoder_svc.evaluate import (
    average_precision,
    hits,
    nearest,
    precision_at_k,
    precision_curve,
    relevant_counts,
    retrieval,
    top1_accuracy,
)
from evaluation.baselines import centred, colour_histogram, downscaled


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Item 0 is the query; 1 is closest, then 2, then 3 (at angles 10, 40 and 80 degrees).
ANGLES = np.radians([0, 10, 40, 80])
LINE = unit([[np.cos(a), np.sin(a)] for a in ANGLES])


def test_nearest_ranks_by_cosine_and_leaves_the_query_out() -> None:
    assert nearest(LINE, np.array([0]), 3).tolist() == [[1, 2, 3]]
    assert nearest(LINE, np.array([3, 1]), 2).tolist() == [[2, 1], [0, 2]]


def test_an_identical_copy_of_the_query_still_counts_as_a_neighbour() -> None:
    vectors = unit([[1, 0], [0, 1], [1, 0]])
    assert nearest(vectors, np.array([0]), 1).tolist() == [[2]]


def test_ties_go_to_the_lower_catalog_index_even_across_the_cutoff() -> None:
    vectors = unit([[1, 0], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1]])
    assert nearest(vectors, np.array([0]), 3).tolist() == [[2, 3, 4]]
    assert nearest(vectors, np.array([5]), 4).tolist() == [[2, 3, 4, 0]]


def test_nearest_agrees_with_a_full_sort_across_query_chunks() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(700, 8)).tolist())
    queries = np.arange(700)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    assert np.array_equal(nearest(vectors, queries, 5), expected)


def test_nearest_refuses_more_neighbours_than_other_items() -> None:
    with pytest.raises(InvalidArgument, match="k=4"):
        nearest(LINE, np.array([0]), 4)


def test_precision_at_every_cutoff() -> None:
    labels = np.array([7, 7, 5, 7])  # query 0's neighbours 1, 2, 3: hit, miss, hit
    matches = hits(nearest(LINE, np.array([0]), 3), labels, np.array([0]))
    assert matches.tolist() == [[True, False, True]]
    assert precision_curve(matches) == pytest.approx([1.0, 0.5, 2 / 3])
    two = np.array([[True, False], [False, False]])
    assert precision_curve(two) == pytest.approx([0.5, 0.25])


def test_precision_at_k_keeps_its_meaning_for_training() -> None:
    labels = np.array([7, 7, 5, 7])
    assert precision_at_k(LINE, labels, np.array([0]), k=2) == pytest.approx(0.5)
    # Fewer than k + 1 vectors: every other vector is a neighbour.
    assert precision_at_k(LINE, labels, np.array([0]), k=10) == pytest.approx(2 / 3)
    assert precision_at_k(LINE, labels, np.array([], dtype=np.int64)) == 0.0


def test_relevant_counts_leave_the_query_out() -> None:
    labels = np.array([3, 3, 3, 9, 4])
    assert relevant_counts(labels, np.array([0, 3, 4])).tolist() == [2, 0, 0]


def test_average_precision_at_10() -> None:
    matches = np.zeros((3, 10), dtype=bool)
    matches[:, [0, 2]] = True  # hits at ranks 1 and 3: P@1 = 1, P@3 = 2/3
    relevant = np.array([2, 20, 0])
    assert average_precision(matches, relevant).tolist() == pytest.approx(
        [(1 + 2 / 3) / 2, (1 + 2 / 3) / 10, (1 + 2 / 3) / 1]
    )
    assert average_precision(np.zeros((1, 10), bool), np.array([0])).tolist() == [0.0]


def test_leaf_and_colour_needs_both() -> None:
    vectors = unit([[1, 0], [1, 0.1], [1, 0.2], [1, 0.3], [0, 1]])
    leaves = np.array([0, 0, 1, 0, 0])
    colours = np.array([5, 6, 5, 5, 5])
    run = retrieval(vectors, leaves, colours, np.array([0]), k=4)
    assert run.neighbours.tolist() == [[1, 2, 3, 4]]
    assert run.leaf.tolist() == [[True, False, True, True]]
    assert run.leaf_colour.tolist() == [[False, False, True, True]]
    assert run.curves()["p_at_k_leaf_colour"] == [0.0, 0.0, 0.3333, 0.5]  # rounded for JSON


def test_figures_over_chosen_rows() -> None:
    vectors = unit([[1, 0], [1, 0.1], [0, 1], [0.1, 1]] + [[1, 1]] * 8)
    leaves = np.array([0, 0, 1, 1] + [2] * 8)
    run = retrieval(vectors, leaves, leaves, np.array([0, 2]), k=10)
    assert run.figures()["queries"] == 2
    first = run.figures(np.array([0]))
    assert first["p_at_10_leaf"] == pytest.approx(0.1)
    assert first["map_at_10_leaf"] == pytest.approx(1.0)  # its one relevant item ranks first
    assert run.figures(np.array([], dtype=np.int64))["p_at_10_leaf"] == 0.0


def test_top1_accuracy() -> None:
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    assert top1_accuracy(probs, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert top1_accuracy(probs[:0], np.array([], dtype=np.int64)) == 0.0


def images(*colours: tuple[int, int, int]) -> np.ndarray:
    return np.array([np.full((80, 60, 3), colour, dtype=np.uint8) for colour in colours])


def test_colour_histogram_has_512_bins_and_unit_rows() -> None:
    mixed = images((255, 0, 0), (0, 0, 0)).copy()
    mixed[1, :, :30] = (40, 200, 100)  # half of the second image
    histogram = colour_histogram(mixed)
    assert histogram.shape == (2, 512) and histogram.dtype == np.float32
    assert np.linalg.norm(histogram, axis=1) == pytest.approx([1.0, 1.0])
    assert np.flatnonzero(histogram[0]).tolist() == [7 * 64]  # red: cube (7, 0, 0)
    assert histogram[1, 0] == pytest.approx(np.sqrt(0.5))  # black: cube (0, 0, 0)
    assert histogram[1, (1 * 8 + 6) * 8 + 3] == pytest.approx(np.sqrt(0.5))


def test_downscaled_pixels_average_areas() -> None:
    halves = images((0, 0, 0)).copy()
    halves[0, :, 30:] = 255  # right half white
    small = downscaled(halves).reshape(1, 16, 12, 3)
    assert downscaled(halves).shape == (1, 16 * 12 * 3)
    assert np.all(small[0, :, :6] == 0) and small[0, :, 6:] == pytest.approx(1.0)
    odd = np.random.default_rng(1).integers(0, 256, size=(2, 7, 5, 3), dtype=np.uint8)
    assert downscaled(odd, (2, 3)).reshape(2, -1, 3).mean(axis=1) == pytest.approx(
        odd.reshape(2, -1, 3).mean(axis=1) / 255, abs=1e-5
    )


def test_centred_rows_are_unit_and_a_constant_set_gives_zeros() -> None:
    rows = centred(np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]], dtype=np.float32))
    assert np.linalg.norm(rows, axis=1) == pytest.approx([1.0, 1.0, 1.0])
    same = centred(np.ones((3, 4), dtype=np.float32))
    assert np.all(same == 0) and not np.isnan(same).any()
