"""The embedded default catalog: drawn products in the Fashion Product Images layout.

`python -m catalog.generate --out DIR [--seed 0] [--per-leaf N]` writes DIR/styles.csv and
DIR/images/<id>.jpg, the same bytes for the same seed and parameters.
"""

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from catalog import shapes
from catalog.items import COLUMNS, STYLES
from common import paths
from common.errors import InvalidArgument

WIDTH, HEIGHT = 60, 80
SUPERSAMPLE = 3  # drawn at 3x, then reduced: smooth edges at 60x80
EDGE = 2  # outline width at 3x: two thirds of a pixel
FIRST_ID = 100_000
PER_LEAF = 120
MARKER = "generated.json"
QUALITY = 90

COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (28, 28, 30),
    "White": (244, 244, 240),
    "Grey": (128, 128, 132),
    "Navy Blue": (32, 42, 92),
    "Blue": (40, 105, 205),
    "Red": (205, 32, 38),
    "Green": (40, 140, 62),
    "Brown": (118, 74, 40),
    "Beige": (214, 194, 158),
    "Pink": (236, 138, 172),
}
PATTERNS = ("Striped", "Checked", "Dotted")
ALL = tuple(COLOURS)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A leaf of the generated taxonomy and how its products look."""

    path: str
    noun: str  # the product's name in titles
    shape: shapes.Shape
    colours: tuple[str, ...]  # the plausible baseColours
    usages: tuple[str, ...]
    patterned: bool = False  # may carry stripes, checks or dots


LEAVES = (
    Leaf("Apparel/Topwear/Tshirts", "Tshirt", shapes.tshirt, ALL, ("Casual", "Sports"), True),
    Leaf(
        "Apparel/Topwear/Shirts",
        "Shirt",
        shapes.shirt,
        ("White", "Blue", "Black", "Grey", "Pink", "Navy Blue", "Green", "Beige"),
        ("Casual", "Formal"),
        True,
    ),
    Leaf(
        "Apparel/Bottomwear/Trousers",
        "Trousers",
        shapes.trousers,
        ("Black", "Navy Blue", "Grey", "Brown", "Beige", "Blue"),
        ("Casual", "Formal"),
    ),
    Leaf(
        "Apparel/Bottomwear/Shorts",
        "Shorts",
        shapes.shorts,
        ("Blue", "Navy Blue", "Black", "Grey", "Beige", "Green", "Red"),
        ("Casual", "Sports"),
        True,
    ),
    Leaf(
        "Apparel/Bottomwear/Skirts",
        "Skirt",
        shapes.skirt,
        ("Black", "Red", "Pink", "Blue", "Navy Blue", "Beige", "Green", "White"),
        ("Casual", "Party"),
        True,
    ),
    Leaf(
        "Footwear/Shoes/Sneakers",
        "Sneakers",
        shapes.sneaker,
        ("White", "Black", "Grey", "Blue", "Red", "Navy Blue", "Green"),
        ("Casual", "Sports"),
    ),
    Leaf(
        "Footwear/Shoes/Boots",
        "Boots",
        shapes.boot,
        ("Brown", "Black", "Beige", "Grey"),
        ("Casual",),
    ),
    Leaf(
        "Footwear/Shoes/Formal Shoes",
        "Formal Shoes",
        shapes.formal_shoe,
        ("Black", "Brown"),
        ("Formal",),
    ),
    Leaf(
        "Footwear/Sandal/Sandals",
        "Sandals",
        shapes.sandal,
        ("Brown", "Black", "Beige", "Red", "Pink"),
        ("Casual",),
    ),
    Leaf(
        "Footwear/Sandal/Flip Flops",
        "Flip Flops",
        shapes.flip_flop,
        ("Black", "Blue", "Red", "Pink", "Green", "White", "Navy Blue"),
        ("Casual",),
    ),
    Leaf(
        "Accessories/Watches/Analog",
        "Analog Watch",
        shapes.analog_watch,
        ("Black", "Brown", "Grey", "White", "Navy Blue", "Beige"),
        ("Casual", "Formal"),
    ),
    Leaf(
        "Accessories/Watches/Digital",
        "Digital Watch",
        shapes.digital_watch,
        ("Black", "Grey", "Blue", "Red", "Green", "Pink", "White"),
        ("Casual", "Sports"),
    ),
    Leaf(
        "Accessories/Bags/Handbags",
        "Handbag",
        shapes.handbag,
        ("Black", "Brown", "Beige", "Red", "Pink", "White", "Navy Blue"),
        ("Casual", "Party"),
        True,
    ),
    Leaf(
        "Accessories/Bags/Backpacks",
        "Backpack",
        shapes.backpack,
        ("Black", "Navy Blue", "Grey", "Blue", "Red", "Green"),
        ("Casual", "Travel"),
        True,
    ),
    Leaf(
        "Accessories/Eyewear/Sunglasses",
        "Sunglasses",
        shapes.sunglasses,
        ("Black", "Brown", "Grey", "Blue", "Red", "Pink"),
        ("Casual",),
    ),
)

RGB = tuple[int, int, int]


def _blend(colour: np.ndarray, towards: float, share: float) -> RGB:
    mixed = np.asarray(colour, float) * (1 - share) + towards * share
    return tuple(int(c) for c in np.clip(mixed, 0, 255))  # type: ignore[return-value]


def _palette(main: np.ndarray) -> dict[str, RGB]:
    """The paints of one item, derived from its jittered main colour."""
    light = float(main @ (0.299, 0.587, 0.114)) > 140
    shade = _blend(main, 0, 0.35) if light else _blend(main, 255, 0.25)
    contrast = _blend(main, 0, 0.6) if light else _blend(main, 255, 0.75)
    return {
        "main": _blend(main, 0, 0),
        "shade": shade,
        "contrast": contrast,
        "light": _blend(main, 255, 0.5),
        "lens": _blend(main, 0, 0.6),
        "dark": (30, 30, 34),
        "sole": (236, 233, 226),
        "metal": (184, 187, 192),
        "face": (246, 246, 240),
        "screen": (168, 182, 166),
    }


@dataclasses.dataclass(frozen=True)
class _Pose:
    """Where an item sits in the frame: the jitter applied to its shape."""

    dx: float
    dy: float
    scale: float
    angle: float
    flip: float

    def apply(self, points: Sequence[shapes.Point]) -> list[shapes.Point]:
        cos, sin = math.cos(self.angle) * self.scale, math.sin(self.angle) * self.scale
        cx, cy = WIDTH / 2 + self.dx, HEIGHT / 2 + self.dy
        return [
            (
                (cx + cos * self.flip * x - sin * y) * SUPERSAMPLE,
                (cy + sin * self.flip * x + cos * y) * SUPERSAMPLE,
            )
            for x, y in points
        ]


def _pose(rng: np.random.Generator) -> _Pose:
    return _Pose(
        dx=rng.uniform(-5, 5),
        dy=rng.uniform(-5, 5),
        scale=rng.uniform(0.72, 1.04),
        angle=math.radians(rng.uniform(-10, 10)),
        flip=1.0 if rng.random() < 0.5 else -1.0,
    )


def _background(rng: np.random.Generator) -> Image.Image:
    """White, or a light grey gradient like a studio backdrop, slightly tinted."""
    top = rng.uniform(238, 255) if rng.random() < 0.6 else rng.uniform(200, 235)
    bottom = min(255.0, top + rng.uniform(0, 20))
    rows = np.linspace(top, bottom, HEIGHT * SUPERSAMPLE)[:, None, None]
    pixels = rows + rng.uniform(-4, 4, 3) + np.zeros((1, WIDTH * SUPERSAMPLE, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _fabric(
    rng: np.random.Generator, pattern: str | None, paints: dict[str, RGB], pose: _Pose
) -> Image.Image:
    """The item's main colour with its pattern, drawn in the item's own frame."""
    layer = Image.new("RGB", (WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE), paints["main"])
    draw, ink = ImageDraw.Draw(layer), paints["contrast"]
    period = rng.uniform(4, 8)
    steps = np.arange(-60, 60, period)
    if pattern in ("Striped", "Checked"):
        for y in steps:
            draw.polygon(pose.apply(shapes.rect(-60, y, 60, y + period * 0.35)), fill=ink)
    if pattern == "Checked":
        for x in steps:
            draw.polygon(pose.apply(shapes.rect(x, -60, x + period * 0.35, 60)), fill=ink)
    if pattern == "Dotted":
        for x in steps:
            for y in steps:
                draw.polygon(pose.apply(shapes.ellipse(x, y, period * 0.2, period * 0.2)), fill=ink)
    return layer


def _draw(
    image: Image.Image,
    ops: list[shapes.Op],
    paints: dict[str, RGB],
    fabric: Image.Image,
    pose: _Pose,
) -> None:
    draw = ImageDraw.Draw(image)
    for op in ops:
        points = pose.apply(op.points)
        paint = paints["main" if op.paint == "body" else op.paint]
        if op.width:
            width = max(1, round(op.width * pose.scale * SUPERSAMPLE))
            draw.line(points, fill=paint, width=width, joint="curve")
            continue
        if op.paint == "body":
            mask = Image.new("L", image.size, 0)
            ImageDraw.Draw(mask).polygon(points, fill=255)
            image.paste(fabric, mask=mask)
        edge = _blend(np.asarray(paint), 0, 0.35)
        draw.polygon(points, fill=None if op.paint == "body" else paint, outline=edge, width=EDGE)


def render(leaf: Leaf, rng: np.random.Generator) -> tuple[Image.Image, str, str | None]:
    """Draws one item of a leaf.

    Args:
        leaf: the leaf whose product to draw.
        rng: the item's own random generator.

    Returns:
        The 60x80 RGB image, the baseColour name and the pattern name (None when plain).
    """
    ops = leaf.shape(rng)
    colour = str(rng.choice(leaf.colours))
    main = np.asarray(COLOURS[colour]) * rng.uniform(0.88, 1.1) + rng.normal(0, 7, 3)
    paints = _palette(np.clip(main, 0, 255))
    pattern = str(rng.choice(PATTERNS)) if leaf.patterned and rng.random() < 0.35 else None
    pose = _pose(rng)
    image = _background(rng)
    _draw(image, ops, paints, _fabric(rng, pattern, paints, pose), pose)
    pixels = np.asarray(image.reduce(SUPERSAMPLE), float) + rng.normal(
        0, rng.uniform(1, 4), (HEIGHT, WIDTH, 3)
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), colour, pattern


def _row(item_id: str, leaf: Leaf, n: int, rng: np.random.Generator, images: Path) -> list[str]:
    image, colour, pattern = render(leaf, rng)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=QUALITY)
    (images / f"{item_id}.jpg").write_bytes(buffer.getvalue())
    master, sub, article = paths.split(leaf.path)
    title = " ".join(filter(None, (colour, pattern, leaf.noun, str(n + 1))))
    return [item_id, master, sub, article, colour, str(rng.choice(leaf.usages)), title]


def _write(out: Path, seed: int, per_leaf: int) -> None:
    images = out / "images"
    images.mkdir()
    with (out / STYLES).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for n in range(per_leaf):  # leaves interleaved: any prefix of the file covers them all
            for index, leaf in enumerate(LEAVES):
                item_id = str(FIRST_ID + n * len(LEAVES) + index)
                rng = np.random.default_rng([seed, index, n])
                writer.writerow(_row(item_id, leaf, n, rng, images))


def _parameters(seed: int, per_leaf: int) -> dict[str, object]:
    # The drawing code's digest: a cached catalog drawn by older code is drawn again.
    code = Path(shapes.__file__).read_bytes() + Path(__file__).read_bytes()
    return {"seed": seed, "per_leaf": per_leaf, "code": hashlib.sha256(code).hexdigest()[:16]}


def _marker(out: Path) -> object:
    try:
        return json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"{out} is a file, not a folder")
    if out.exists() and _marker(out) is None and any(out.iterdir()):
        raise InvalidArgument(f"{out} holds files that are not a generated catalog")


def generate(out: str | Path, seed: int = 0, per_leaf: int = PER_LEAF) -> Path:
    """Writes the default catalog into `out` unless it already holds the same one.

    The catalog is written beside `out` and moved into place once complete, so a reader
    never sees half of it.

    Args:
        out: the catalog's folder; replaced if it holds another generated catalog.
        seed: the catalog's seed; the same seed gives the same bytes.
        per_leaf: items drawn for each of the LEAVES.

    Returns:
        `out`, now a catalog that `catalog.items.open_catalog` reads.

    Raises:
        InvalidArgument: a negative seed, per_leaf below 1, or `out` holds other files.
    """
    out = Path(out)
    if seed < 0 or per_leaf < 1:
        raise InvalidArgument(f"seed {seed} must be >= 0 and per_leaf {per_leaf} >= 1")
    parameters = _parameters(seed, per_leaf)
    if _marker(out) == parameters:
        return out
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(staging, seed, per_leaf)
        (staging / MARKER).write_text(json.dumps(parameters, indent=1) + "\n")
        if _marker(out) != parameters:  # another process may have finished first
            shutil.rmtree(out, ignore_errors=True)
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the catalog's folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-leaf", type=int, default=PER_LEAF, help="items per leaf")
    args = parser.parse_args()
    out = generate(args.out, args.seed, args.per_leaf)
    print(f"{out}: {args.per_leaf * len(LEAVES)} items in {len(LEAVES)} leaves")


if __name__ == "__main__":
    main()
