"""Scoring the cluster's answers: ids become catalog rows; missing or failed ones find nothing."""

import numpy as np

from evaluation.robustness import score
from evaluation.served import answer_rows, codes_with_none


def test_answers_become_rows_and_what_is_missing_finds_nothing() -> None:
    index = {"a": 0, "b": 1, "c": 2}
    found = [["b", "a", "zz"], None]

    rows = answer_rows(found, index)

    assert rows.shape == (2, 10)
    assert rows[0, :3].tolist() == [1, 0, 3]  # "zz" is not in the catalog: the 'no item' row
    assert (rows[0, 3:] == 3).all() and (rows[1] == 3).all()
    leaves = codes_with_none(["x", "x", "y"])
    assert leaves.tolist() == [0, 0, 1, -1]
    figures = score(rows, np.array([0, 2]), leaves, leaves)
    assert figures["own_at_1"] == 0.0 and figures["own_at_10"] == 0.5
    assert figures["p_at_10_leaf"] == round(2 / 20, 4)  # "b" and "a" share item 0's leaf
