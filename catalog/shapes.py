"""Product silhouettes for the generated catalog, as drawing operations in a 60x80 frame.

Coordinates are pixels of the final image relative to its centre (x right, y down), before
the per-item jitter. Leaves under one subCategory share a base (a Shirt is a Tshirt's body
with long sleeves, collar and buttons) so that they look more alike than other leaves do.
"""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

Point = tuple[float, float]


class Op(NamedTuple):
    """A filled polygon (width 0) or a polyline of that width, in a named paint."""

    points: Sequence[Point]
    paint: str
    width: float = 0.0


Shape = Callable[[np.random.Generator], list[Op]]


def arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 12
) -> list[Point]:
    """Points on an ellipse from angle `start` to `end` in degrees (90 is straight down)."""
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def ellipse(cx: float, cy: float, rx: float, ry: float) -> list[Point]:
    return arc(cx, cy, rx, ry, 0, 360, 24)[:-1]


def rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def mirror(points: Sequence[Point]) -> list[Point]:
    return [(-x, y) for x, y in points]


def symmetric(left: Sequence[Point]) -> list[Point]:
    """A polygon symmetric about x=0 from its left half, traced from the top centre."""
    return [*left, *mirror(left[::-1])]


def both(op: Op) -> list[Op]:
    """The op and its mirror image."""
    return [op, op._replace(points=mirror(op.points))]


def _top_body(rng: np.random.Generator, sleeve: Sequence[Point]) -> list[Point]:
    width, hem = rng.uniform(14, 17), rng.uniform(25, 31)
    left = [(0, -25), (-4, -26), (-7, -30), (-width - 3, -27), *sleeve, (-width, -13)]
    return symmetric([*left, (-width, hem), (-width / 2, hem + 1), (0, hem + 1.5)])


def tshirt(rng: np.random.Generator) -> list[Op]:
    reach = rng.uniform(-2, 2)
    sleeve = [(-27 - reach, -14 + reach), (-21 - reach, -7 + reach)]
    neck = arc(0, -30, 7, 5, 0, 180)
    ops = [Op(_top_body(rng, sleeve), "body"), Op(neck, "shade", 1.5)]
    if rng.random() < 0.4:  # a chest print
        x, y, r = rng.uniform(-6, 6), rng.uniform(-16, -4), rng.uniform(3, 7)
        badge = ellipse(x, y, r, r) if rng.random() < 0.5 else rect(x - r, y - 2, x + r, y + 2)
        ops.append(Op(badge, "contrast"))
    return ops


def shirt(rng: np.random.Generator) -> list[Op]:
    cuff = rng.uniform(14, 20)
    sleeve = [(-24, -15), (-27, cuff), (-21, cuff + 1)]
    ops = [Op(_top_body(rng, sleeve), "body"), Op([(0, -23), (0, 30)], "shade", 1.0)]
    ops += both(Op([(-7, -31), (0, -23), (-9, -21)], "shade"))
    ops += both(Op([(-27, cuff - 3), (-21, cuff - 2)], "shade", 1.5))
    ops += [Op(ellipse(0, y, 1.2, 1.2), "contrast") for y in range(-18, 27, 8)]
    if rng.random() < 0.5:
        ops.append(Op(rect(-12, -17, -5, -9), "shade", 0.8))
    return ops


def _legs(waist: float, top: float, hem_out: float, hem: float, crotch: float) -> list[Op]:
    left = [(0, top), (-waist, top), (-hem_out, hem), (-2.5, hem), (0, crotch)]
    band = rect(-waist, top, waist, top + 4)
    return [
        Op(symmetric(left), "body"),
        Op(band, "shade"),
        Op([(0, top + 4), (0, top + 16)], "shade", 1.0),
    ]


def trousers(rng: np.random.Generator) -> list[Op]:
    waist = rng.uniform(11, 14)
    ops = _legs(waist, -35, waist + rng.uniform(0, 3), 36, -6)
    return ops + both(Op([(-waist + 1, -30), (-waist + 5, -23)], "shade", 0.8))


def shorts(rng: np.random.Generator) -> list[Op]:
    waist, hem = rng.uniform(14, 17), rng.uniform(12, 18)
    ops = _legs(waist, -22, waist + rng.uniform(2, 5), hem, -1)
    if rng.random() < 0.4:
        ops += both(Op([(-waist - 0.5, -17), (-waist - 3, hem - 1)], "contrast", 1.8))
    return ops


def skirt(rng: np.random.Generator) -> list[Op]:
    waist, flare, hem = rng.uniform(9, 12), rng.uniform(18, 25), rng.uniform(20, 28)
    left = [(0, -26), (-waist, -26), (-flare, hem - 2), (-flare / 2, hem + 1), (0, hem + 1.5)]
    ops = [Op(symmetric(left), "body"), Op(rect(-waist, -26, waist, -22), "shade")]
    if rng.random() < 0.5:
        ops += [Op([(x * waist, -22), (x * flare, hem)], "shade", 0.8) for x in (-0.5, 0, 0.5)]
    return ops


def sneaker(rng: np.random.Generator) -> list[Op]:
    top = rng.uniform(-12, -9)
    upper = [
        (-27, 6),
        (-28, -3),
        (-25, top),
        (-17, top - 1),
        (-12, top + 4),
        (-6, top),
        (4, -6),
        (14, -2),
        (22, 1),
        (27, 4),
        (27, 6),
    ]
    sole = [(-28, 5), (28, 5), (28, 9), (26, 12), (-26, 12), (-29, 9)]
    laces = [
        Op([(-7 + 3 * i, top + 1 + i), (-4 + 3 * i, top + 3 + i)], "contrast", 1.2)
        for i in range(4)
    ]
    ops = [Op(upper, "body"), Op(sole, "sole"), *laces]
    if rng.random() < 0.6:
        ops.append(Op(arc(-4, 8, 14, 9, 200, 320, 6), "contrast", 2.0))
    return ops


def formal_shoe(rng: np.random.Generator) -> list[Op]:
    toe = rng.uniform(27, 30)
    upper = [
        (-26, 8),
        (-27, 0),
        (-24, -6),
        (-15, -6),
        (-10, -3),
        (-4, -5),
        (6, -2),
        (16, 1),
        (25, 4),
        (toe, 7),
        (toe - 1, 9),
    ]
    ops = [
        Op(upper, "body"),
        Op([(-26, 8), (toe, 8), (toe - 1, 10.5), (-26, 10.5)], "dark"),
        Op(rect(-26, 10, -18, 14), "dark"),
        Op(arc(19, 8, 6, 8, 200, 290, 5), "shade", 0.8),
        Op([(-2, -3), (12, 1)], "light", 1.0),
    ]
    if rng.random() < 0.5:
        ops.append(Op([(-6, -5), (-1, -1)], "shade", 1.2))
    return ops


def boot(rng: np.random.Generator) -> list[Op]:
    shaft = rng.uniform(-32, -24)
    upper = [
        (-22, 12),
        (-23, shaft),
        (-7, shaft - 1),
        (-6, -8),
        (6, -2),
        (18, 3),
        (24, 7),
        (25, 12),
    ]
    ops = [
        Op(upper, "body"),
        Op(rect(-23, 11, 26, 16), "dark"),
        Op(rect(-23, shaft - 1, -7, shaft + 3), "shade"),
    ]
    if rng.random() < 0.5:
        ops += [Op([(-10, y), (-5, y + 2)], "contrast", 1.0) for y in np.arange(shaft + 6, -6, 5)]
    return ops


def _pair(sole: Callable[[float], list[Op]]) -> list[Op]:
    return sole(-13) + sole(13)


def _foot(cx: float) -> list[Point]:
    # A sole narrower at the heel (bottom) than at the toes (top).
    return [(cx + (x - cx) * (0.8 - y / 170), y) for x, y in ellipse(cx, 0, 10, 34)]


def flip_flop(rng: np.random.Generator) -> list[Op]:
    post = rng.uniform(-26, -22)

    def sole(cx: float) -> list[Op]:
        strap = [(cx - 8, -2), (cx, post), (cx + 8, -2)]
        return [Op(_foot(cx), "body"), Op(strap, "contrast", 2.0)]

    return _pair(sole)


def sandal(rng: np.random.Generator) -> list[Op]:
    straps = rng.uniform(-22, -16), rng.uniform(-6, 0)

    def sole(cx: float) -> list[Op]:
        bands = [Op(rect(cx - 10, y, cx + 10, y + 6), "body") for y in straps]
        heel = Op(arc(cx, 18, 10, 9, 180, 360, 8), "body", 3.0)
        return [Op(_foot(cx), "shade"), *bands, heel, Op(rect(cx + 6, 15, cx + 10, 19), "metal")]

    return _pair(sole)


def _strap(rng: np.random.Generator) -> list[Op]:
    half = rng.uniform(5, 7)
    band = [
        (-half, -40),
        (half, -40),
        (half + 2, -10),
        (half + 2, 10),
        (half, 40),
        (-half, 40),
        (-half - 2, 10),
        (-half - 2, -10),
    ]
    holes = [Op(ellipse(0, y, 1, 1), "shade") for y in (22, 27, 32)]
    return [Op(band, "body"), *holes]


def analog_watch(rng: np.random.Generator) -> list[Op]:
    dial, hands = ("dark", "face") if rng.random() < 0.3 else ("face", "dark")
    angles = rng.uniform(0, 2 * math.pi, 2)
    ticks = [
        Op(ellipse(10 * math.cos(a), 10 * math.sin(a), 0.7, 0.7), hands)
        for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)
    ]
    hand_ops = [
        Op([(0, 0), (r * math.cos(a), r * math.sin(a))], hands, 1.2)
        for r, a in zip((6, 9), angles, strict=True)
    ]
    return [
        *_strap(rng),
        Op(rect(13, -2, 17, 2), "metal"),
        Op(ellipse(0, 0, 14, 14), "metal"),
        Op(ellipse(0, 0, 11.5, 11.5), dial),
        *ticks,
        *hand_ops,
    ]


def _digit(x: float, segments: np.ndarray) -> list[Op]:
    ends = [
        ((0, -4), (3, -4)),
        ((3, -4), (3, 0)),
        ((3, 0), (3, 4)),
        ((0, 4), (3, 4)),
        ((0, 0), (0, 4)),
        ((0, -4), (0, 0)),
        ((0, 0), (3, 0)),
    ]
    return [
        Op([(x + a[0], a[1]), (x + b[0], b[1])], "dark", 0.9)
        for (a, b), on in zip(ends, segments, strict=True)
        if on
    ]


def digital_watch(rng: np.random.Generator) -> list[Op]:
    digits = [op for i in range(3) for op in _digit(-7 + 5 * i, rng.random(7) < 0.7)]
    buttons = [
        Op(rect(side * 13, y, side * 15.5, y + 4), "shade") for side in (-1, 1) for y in (-8, 4)
    ]
    return [
        *_strap(rng),
        *buttons,
        Op(rect(-13, -14, 13, 14), "body"),
        Op(rect(-9, -7, 9, 7), "screen"),
        *digits,
    ]


def handbag(rng: np.random.Generator) -> list[Op]:
    top, lift = rng.uniform(-10, -4), rng.uniform(14, 22)
    body = [(-20, top), (20, top), (25, 26), (22, 30), (-22, 30), (-25, 26)]
    handle = arc(0, top, 11, lift, 180, 360)
    return [
        Op(handle, "shade", 2.5),
        Op(body, "body"),
        Op(rect(-3, top + 1, 3, top + 6), "metal"),
        Op([(-21, top + 6), (21, top + 6)], "shade", 0.8),
    ]


def backpack(rng: np.random.Generator) -> list[Op]:
    pocket = rng.uniform(4, 12)
    body = [*arc(0, -14, 18, 17, 180, 360), (18, 30), (16, 34), (-16, 34), (-18, 30)]
    straps = both(Op([(-20, -20), (-17, -20), (-19, 30), (-22, 30)], "shade"))
    return [
        *straps,
        Op(arc(0, -31, 5, 5, 180, 360, 8), "shade", 2.0),
        Op(body, "body"),
        Op(arc(0, -14, 15, 14, 190, 350, 10), "dark", 0.8),
        Op(rect(-13, pocket, 13, 30), "shade"),
        Op([(-11, pocket + 3), (11, pocket + 3)], "dark", 0.8),
    ]


def sunglasses(rng: np.random.Generator) -> list[Op]:
    rx, ry = rng.uniform(9.5, 12.5), rng.uniform(6.5, 10)
    lens = Op(ellipse(-14, 0, rx, ry), "lens")
    frame = Op([*lens.points, lens.points[0]], "main", 2.2)
    ops = [*both(lens), *both(frame), *both(Op([(-14 - rx, -2), (-29, -6)], "main", 2.0))]
    ops.append(Op(arc(0, -1, 14 - rx + 1, 3, 180, 360, 6), "main", 2.0))
    return [*ops, *both(Op([(-19, -4), (-15, -6)], "light", 1.0))]
