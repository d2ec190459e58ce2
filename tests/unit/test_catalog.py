"""The catalog: the generated default, the loader of the on-disk layout, the split."""

import csv
import io
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from catalog.generate import COLOURS, LEAVES, MARKER, generate
from catalog.items import COLUMNS, CatalogItem, open_catalog
from catalog.split import is_held_out
from common import paths
from common.errors import InvalidArgument, NotFound
from tests.images import encode

PER_LEAF = 3
FASHION_SMALL = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "fashion-small"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("generated") / "catalog", seed=0, per_leaf=PER_LEAF)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(file.relative_to(root)): file.read_bytes() for file in root.rglob("*") if file.is_file()
    }


def _write_styles(root: Path, rows: list[tuple[str, str]]) -> None:
    """styles.csv with one row per (id, articleType), the other columns made up."""
    with (root / "styles.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for item_id, article in rows:
            writer.writerow(
                [
                    item_id,
                    "Apparel",
                    "Topwear",
                    article,
                    "Red",
                    "Casual",
                    f"Red, bright {article} {item_id}",
                ]
            )


def _jpeg(colour: str) -> bytes:
    return encode(Image.new("RGB", (60, 80), colour), "JPEG")


ROWS = [("7", "Tshirts"), ("3", "Shirts"), ("5", "Tshirts")]  # "5" has no image
IMAGES = {"images/7.jpg": _jpeg("red"), "images/3.png": _jpeg("blue")}


@pytest.fixture(params=["zip", "folder"])
def handmade(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    _write_styles(tmp_path, ROWS)
    if request.param == "zip":
        with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
            for name, data in IMAGES.items():
                archive.writestr(name, data)
    else:
        for name, data in IMAGES.items():
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_bytes(data)
    return tmp_path


def test_same_seed_writes_the_same_bytes_and_another_seed_other_images(tmp_path: Path) -> None:
    first = _files(generate(tmp_path / "a", seed=5, per_leaf=2))
    second = _files(generate(tmp_path / "b", seed=5, per_leaf=2))
    other = _files(generate(tmp_path / "c", seed=6, per_leaf=2))
    assert first == second
    assert first.keys() == other.keys()
    images = [name for name in first if name.startswith("images/")]
    assert len(images) == 2 * len(LEAVES)
    assert all(first[name] != other[name] for name in images)


def test_generated_catalog_covers_a_three_level_taxonomy(generated: Path) -> None:
    with open_catalog(generated) as catalog:
        assert len(catalog) == PER_LEAF * len(LEAVES)
        assert catalog.skipped == 0
        assert catalog.leaves() == sorted(leaf.path for leaf in LEAVES)
        assert all(len(paths.split(leaf)) == 3 for leaf in catalog.leaves())
        assert len({paths.partition_of(leaf, 1) for leaf in catalog.leaves()}) == 3
        assert {item.colour for item in catalog.items} <= set(COLOURS)
        assert all(item.id.isdigit() and item.title for item in catalog.items)
        assert [item.leaf for item in catalog.items].count(LEAVES[0].path) == PER_LEAF


def test_every_generated_image_is_a_60_by_80_rgb_jpeg(generated: Path) -> None:
    with open_catalog(generated) as catalog:
        for item in catalog.items:
            image = Image.open(io.BytesIO(catalog.image_bytes(item.id)))
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (60, 80))


def test_generate_keeps_a_complete_catalog_and_replaces_one_of_other_parameters(
    generated: Path,
) -> None:
    before = (generated / "styles.csv").stat()
    assert generate(generated, seed=0, per_leaf=PER_LEAF) == generated
    assert (generated / "styles.csv").stat().st_mtime_ns == before.st_mtime_ns

    other = generate(generated.parent / "other", seed=0, per_leaf=1)
    generate(other, seed=0, per_leaf=2)
    with open_catalog(other) as catalog:
        assert len(catalog) == 2 * len(LEAVES)


def test_generate_refuses_a_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="not a generated catalog"):
        generate(tmp_path, per_leaf=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / MARKER).exists()


def test_cli_writes_a_catalog(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "catalog.generate",
        "--out",
        str(tmp_path / "c"),
        "--seed",
        "1",
        "--per-leaf",
        "1",
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).parents[2])
    with open_catalog(tmp_path / "c") as catalog:
        assert len(catalog) == len(LEAVES)


def test_loader_reads_rows_with_an_image_in_file_order(handmade: Path) -> None:
    with open_catalog(str(handmade)) as catalog:
        assert [item.id for item in catalog.items] == ["7", "3"]
        assert catalog.skipped == 1
        assert catalog.get("3") == CatalogItem(
            "3", "Apparel/Topwear/Shirts", "Red", "Casual", "Red, bright Shirts 3"
        )
        assert catalog.image_bytes("7") == IMAGES["images/7.jpg"]
        assert catalog.image_bytes("3") == IMAGES["images/3.png"]
        assert catalog.leaves() == ["Apparel/Topwear/Shirts", "Apparel/Topwear/Tshirts"]


def test_image_bytes_is_safe_from_many_threads(handmade: Path) -> None:
    with open_catalog(handmade) as catalog:
        ids = ["7", "3"] * 200
        with ThreadPoolExecutor(8) as pool:
            read = list(pool.map(catalog.image_bytes, ids))
        assert read == [catalog.image_bytes(item_id) for item_id in ids]


def test_unknown_id_is_not_found(handmade: Path) -> None:
    with open_catalog(handmade) as catalog:
        for unknown in ("5", "404"):
            with pytest.raises(NotFound):
                catalog.get(unknown)
            with pytest.raises(NotFound):
                catalog.image_bytes(unknown)


def test_jpg_wins_over_png_for_one_id(tmp_path: Path) -> None:
    _write_styles(tmp_path, [("1", "Tshirts")])
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.png").write_bytes(_jpeg("blue"))
    (tmp_path / "images" / "1.jpg").write_bytes(_jpeg("red"))
    with open_catalog(tmp_path) as catalog:
        assert catalog.image_bytes("1") == _jpeg("red")


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ({}, "styles.csv"),
        ({"styles.csv": ",".join(COLUMNS)}, "images"),
        ({"styles.csv": "id,articleType\n", "images/1.jpg": ""}, "columns"),
    ],
)
def test_a_folder_that_is_not_a_catalog_is_refused(
    tmp_path: Path, files: dict[str, str], missing: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(InvalidArgument, match=missing):
        open_catalog(tmp_path)


def test_the_split_holds_out_about_a_tenth() -> None:
    held = sum(is_held_out(str(item_id)) for item_id in range(100_000, 110_000))
    assert 900 < held < 1_100


@pytest.mark.skipif(not FASHION_SMALL.is_dir(), reason="fashion-small is not beside the project")
def test_the_split_matches_the_fashion_small_readme() -> None:
    with open_catalog(FASHION_SMALL) as catalog:
        assert len(catalog) == 44_072
        assert sum(is_held_out(item.id) for item in catalog.items) == 4_478
