"""The catalog through the serving path (decode, normalise, onnxruntime), and the baselines."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from catalog.items import Catalog, CatalogItem
from common.errors import InvalidArgument
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.runtime import Encoder
from evaluation import baselines

BATCH = 256  # images per model call


@dataclasses.dataclass(frozen=True)
class Features:
    """Every decodable catalog item, in catalog order, with its vectors from each embedding."""

    items: list[CatalogItem]
    model: np.ndarray  # (N, dim), unit rows, from the encoder
    probs: np.ndarray  # (N, leaves), the encoder's leaf probabilities
    colour_histogram: np.ndarray  # (N, 512), unit rows
    raw_pixels: np.ndarray  # (N, 16 * 12 * 3), centred, unit rows
    undecodable: int  # items left out because their image would not decode


def embed_catalog(catalog: Catalog, encoder: Encoder, threads: int = 2) -> Features:
    """Decodes and embeds every catalog item in batches, with a progress bar.

    Args:
        catalog: the open catalog.
        encoder: the loaded model; its preprocessing parameters decide the input.
        threads: decoding threads.

    Returns:
        The vectors of the items whose image decodes.
    """
    items: list[CatalogItem] = []
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("model", "probs", "hist", "pix")}
    with (
        ThreadPoolExecutor(threads) as pool,
        tqdm(total=len(catalog), desc="embed", unit="img") as bar,
    ):
        for start in range(0, len(catalog), BATCH):
            batch = catalog.items[start : start + BATCH]
            images = list(pool.map(lambda item: _decode(catalog, encoder, item), batch))
            kept = [image for image in images if image is not None]
            items += [item for item, image in zip(batch, images, strict=True) if image is not None]
            if kept:
                _add(parts, np.stack(kept), encoder)
            bar.update(len(batch))
    if not items:
        raise InvalidArgument(f"no image of catalog {catalog.root} decodes")
    return Features(
        items=items,
        model=np.concatenate(parts["model"]),
        probs=np.concatenate(parts["probs"]),
        colour_histogram=np.concatenate(parts["hist"]),
        raw_pixels=baselines.centred(np.concatenate(parts["pix"])),
        undecodable=len(catalog) - len(items),
    )


def _decode(catalog: Catalog, encoder: Encoder, item: CatalogItem) -> np.ndarray | None:
    try:
        return decode(catalog.image_bytes(item.id), Limits(), encoder.params)
    except InvalidArgument:
        return None


def _add(parts: dict[str, list[np.ndarray]], images: np.ndarray, encoder: Encoder) -> None:
    embeddings, probs = encoder.embed(normalise(images, encoder.params))
    parts["model"].append(embeddings)
    parts["probs"].append(probs)
    parts["hist"].append(baselines.colour_histogram(images))
    parts["pix"].append(baselines.downscaled(images))
