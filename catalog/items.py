"""A catalog on disk in the Fashion Product Images layout: styles.csv plus images/ or images.zip."""

import csv
import dataclasses
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Protocol

from common import paths
from common.errors import InvalidArgument, NotFound

STYLES = "styles.csv"
COLUMNS = (
    "id",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "usage",
    "productDisplayName",
)
# When one id has images under several extensions, the first of these wins.
EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class CatalogItem:
    """One product: its id, its leaf path "master/sub/articleType" and its attributes."""

    id: str
    leaf: str
    colour: str
    usage: str
    title: str


class _Images(Protocol):
    names: dict[str, str]  # item id -> file or member name

    def read(self, name: str) -> bytes: ...

    def close(self) -> None: ...


class _FolderImages:
    """Images as files in a folder; reading files is safe from any thread."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self.names = _by_id(entry.name for entry in folder.iterdir())

    def read(self, name: str) -> bytes:
        return (self._folder / name).read_bytes()

    def close(self) -> None:
        pass


class _ZipImages:
    """Images as `images/<id>.<ext>` members of a zip; one lock, as a ZipFile is not thread-safe."""

    def __init__(self, file: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(file)
        except zipfile.BadZipFile as error:
            raise InvalidArgument(f"{file} is not a zip file") from error
        self._lock = threading.Lock()
        self.names = _by_id(self._zip.namelist(), prefix="images/")

    def read(self, name: str) -> bytes:
        with self._lock:
            return self._zip.read(name)

    def close(self) -> None:
        self._zip.close()


def _by_id(names: Iterable[str], prefix: str = "") -> dict[str, str]:
    """Maps each id to its image's name `<prefix><id><ext>`, preferring EXTENSIONS in order."""
    found: dict[str, str] = {}
    for name in sorted(names, key=_extension_rank):
        stem, dot, ext = name.removeprefix(prefix).rpartition(".")
        if name.startswith(prefix) and dot and "/" not in stem and "." + ext.lower() in EXTENSIONS:
            found.setdefault(stem, name)
    return found


def _extension_rank(name: str) -> int:
    ext = "." + name.rpartition(".")[2].lower()
    return EXTENSIONS.index(ext) if ext in EXTENSIONS else len(EXTENSIONS)


class Catalog:
    """The items of a catalog with a lookup by id and their image bytes.

    Attributes:
        root: the catalog's folder.
        items: the items with an image, in the order of styles.csv.
        skipped: how many rows of styles.csv were left out for want of an image.
    """

    def __init__(self, root: Path, items: list[CatalogItem], images: _Images, skipped: int):
        self.root = root
        self.items = items
        self.skipped = skipped
        self._images = images
        self._by_id = {item.id: item for item in items}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> CatalogItem:
        """The item with this id.

        Raises:
            NotFound: no item of the catalog has this id.
        """
        try:
            return self._by_id[item_id]
        except KeyError:
            raise NotFound(f"catalog {self.root} has no item {item_id!r}") from None

    def image_bytes(self, item_id: str) -> bytes:
        """The encoded image of an item, as stored (JPEG or PNG); safe to call from any thread.

        Raises:
            NotFound: no item of the catalog has this id.
        """
        return self._images.read(self._images.names[self.get(item_id).id])

    def leaves(self) -> list[str]:
        """The distinct leaf paths of the items, sorted."""
        return sorted({item.leaf for item in self.items})

    def close(self) -> None:
        self._images.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_catalog(path: str | Path) -> Catalog:
    """Opens the catalog in a folder holding styles.csv and images/ or images.zip.

    Args:
        path: the catalog's folder.

    Returns:
        The catalog; rows of styles.csv without an image are skipped and counted.

    Raises:
        InvalidArgument: the folder lacks styles.csv or the images, styles.csv lacks a column
            or has a short row or a repeated id.
    """
    root = Path(path)
    images = _open_images(root)
    try:
        items, skipped = _read_styles(root / STYLES, images.names)
    except BaseException:
        images.close()
        raise
    return Catalog(root, items, images, skipped)


def _open_images(root: Path) -> _Images:
    if not (root / STYLES).is_file():
        raise InvalidArgument(f"{root} is not a catalog: it has no {STYLES}")
    if (root / "images").is_dir():
        return _FolderImages(root / "images")
    if (root / "images.zip").is_file():
        return _ZipImages(root / "images.zip")
    raise InvalidArgument(f"{root} is not a catalog: it has neither images/ nor images.zip")


def _read_styles(file: Path, images: dict[str, str]) -> tuple[list[CatalogItem], int]:
    with file.open(newline="", encoding="utf-8") as stream:
        rows = csv.reader(stream)
        columns = _column_indexes(next(rows, []), file)
        items: list[CatalogItem] = []
        skipped = 0
        for line, row in enumerate(rows, start=2):
            if len(row) <= max(columns):
                raise InvalidArgument(f"{file} line {line} has only {len(row)} fields")
            item_id, master, sub, article, colour, usage, title = (row[i] for i in columns)
            if item_id not in images:
                skipped += 1
                continue
            leaf = _leaf(master, sub, article, f"{file} line {line}")
            items.append(CatalogItem(item_id, leaf, colour, usage, title))
    _check_unique(items, file)
    return items, skipped


def _leaf(master: str, sub: str, article: str, where: str) -> str:
    names = (master, sub, article)
    if any(not name.strip() or paths.SEP in name for name in names):
        raise InvalidArgument(f"{where}: category names {names} must be non-empty, without '/'")
    return paths.join(*names)


def _column_indexes(header: list[str], file: Path) -> list[int]:
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InvalidArgument(f"{file} lacks the columns {missing}")
    return [header.index(name) for name in COLUMNS]


def _check_unique(items: list[CatalogItem], file: Path) -> None:
    ids = {item.id for item in items}
    if len(ids) != len(items):
        raise InvalidArgument(f"{file} has {len(items) - len(ids)} repeated ids")
