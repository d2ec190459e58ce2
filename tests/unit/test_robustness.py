"""The changed-photo scorer on a tiny hand-made case, and the changes themselves."""

import io

import numpy as np
from PIL import Image

from evaluation.perturb import CHANGES, changed, label, plan
from evaluation.robustness import by_change, score

# Six catalog items: leaves 0 0 1 1 0 2, colours 0 1 0 0 0 1.
LEAVES = np.array([0, 0, 1, 1, 0, 2])
COLOURS = np.array([0, 1, 0, 0, 0, 1])


def test_the_scorer_counts_own_items_and_shared_leaves_and_colours() -> None:
    own = np.array([0, 2, 5])
    neighbours = np.array(
        [
            [0, 1, 4, 2, 3, 5, 0, 1, 4, 4],  # own first; leaf 0 at 0,1,4,0,1,4,4: 7 of 10
            [3, 2, 0, 1, 4, 5, 3, 3, 3, 3],  # own second; leaf 1 at 3,2,3,3,3,3: 6 of 10
            [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],  # own missing; leaf 2 nowhere
        ]
    )

    figures = score(neighbours, own, LEAVES, COLOURS)

    assert figures["queries"] == 3
    assert figures["own_at_1"] == round(1 / 3, 4)
    assert figures["own_at_10"] == round(2 / 3, 4)
    assert figures["p_at_10_leaf"] == round((7 + 6 + 0) / 30, 4)
    # leaf and colour: query 0 (colour 0) at items 0,4,0,4,4: 5; query 1 (colour 0): 6
    assert figures["p_at_10_leaf_colour"] == round((5 + 6) / 30, 4)


def test_queries_are_scored_by_kind_of_change_and_in_all() -> None:
    own = np.array([0, 2, 5])
    neighbours = np.tile(np.arange(6)[None, :].repeat(2, axis=1)[:, :10], (3, 1))

    rows = by_change(neighbours, own, ["crop", "mix of 2", "crop"], LEAVES, COLOURS)

    assert list(rows) == ["all", "crop", "mix of 2"]
    assert (rows["all"]["queries"], rows["crop"]["queries"], rows["mix of 2"]["queries"]) == (
        3,
        2,
        1,
    )
    assert rows["crop"]["own_at_1"] == 0.5  # item 0 is first, item 5 is not
    assert rows["mix of 2"]["own_at_10"] == 1.0


def test_the_plan_takes_each_change_alone_and_mixes_from_the_seed() -> None:
    drawn = plan(40, seed=3)

    assert drawn == plan(40, seed=3) and drawn != plan(40, seed=4)
    assert {kinds[0] for kinds in drawn[::2]} == set(CHANGES)
    assert {len(kinds) for kinds in drawn[1::2]} == {2, 3, 4, 5, 6}
    assert all(len(set(kinds)) == len(kinds) for kinds in drawn)
    assert [label(k) for k in drawn[:2]] == ["crop", f"mix of {len(drawn[1])}"]


def test_each_change_gives_a_jpeg_and_a_mirror_is_a_mirror() -> None:
    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[:, :40] = 255  # white left half
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    photo = out.getvalue()

    for kind in CHANGES:
        image = Image.open(io.BytesIO(changed(photo, [kind], np.random.default_rng(0))))
        assert image.format == "JPEG" and image.width > 0
    mirrored = np.asarray(
        Image.open(io.BytesIO(changed(photo, ["mirror"], np.random.default_rng(0))))
    )
    assert mirrored[:, :30].mean() < 30 and mirrored[:, 50:].mean() > 225  # white now on the right
    padded = Image.open(io.BytesIO(changed(photo, ["pad"], np.random.default_rng(0))))
    assert padded.width > 80 and padded.height > 60
