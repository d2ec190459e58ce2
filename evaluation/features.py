"""The catalog through the serving path (decode, normalise, onnxruntime), and the baselines."""

import dataclasses
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from catalog.items import Catalog, CatalogItem
from common import paths
from common.errors import InvalidArgument
from common.progress import progress
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from encoder_svc.runtime import Encoder
from evaluation import baselines

BATCH = 256  # images per model call
BASELINES = ("colour_histogram", "raw_pixels")  # the Features fields the model is compared with

Chunks = defaultdict[tuple[str, str], list[np.ndarray]]  # (output, variant) -> batches


@dataclasses.dataclass(frozen=True)
class Features:
    """Every decodable catalog item, in catalog order, with its vectors from each embedding."""

    items: list[CatalogItem]
    model: dict[str, np.ndarray]  # variant -> (N, dim), unit rows, from that encoder
    probs: dict[str, np.ndarray]  # variant -> (N, leaves), that encoder's leaf probabilities
    colour_histogram: np.ndarray  # (N, 512), unit rows
    raw_pixels: np.ndarray  # (N, 16 * 12 * 3), centred, unit rows
    pixel_mean: np.ndarray  # (16 * 12 * 3,) the mean the raw pixels were centred on
    undecodable: int  # items left out because their image would not decode

    def embeddings(self) -> dict[str, np.ndarray]:
        """Every embedding compared, by figure name: the model's variants first ("model fp32"),
        then the baselines."""
        models = {figure_name(variant): vectors for variant, vectors in self.model.items()}
        return models | {name: getattr(self, name) for name in BASELINES}

    def codes(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        """Each item's leaf, colour or master category as an integer code, and the codes'
        names."""
        if field == "master":
            return codes_of([paths.split(item.leaf)[0] for item in self.items])
        return codes_of([getattr(item, field) for item in self.items])


def codes_of(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each value as an integer code, and the codes' names."""
    names, codes = np.unique(np.array(values), return_inverse=True)
    return codes, names


def figure_name(variant: str) -> str:
    """The name of a model variant's entry in the figures, e.g. "model int8"."""
    return f"model {variant}"


def embed_catalog(catalog: Catalog, encoders: dict[str, Encoder], threads: int = 2) -> Features:
    """Decodes every catalog item once, in batches, and embeds each batch with every encoder.

    Args:
        catalog: the open catalog.
        encoders: variant -> loaded model, all of one version (so one preprocessing).
        threads: decoding threads.

    Returns:
        The vectors of the items whose image decodes.
    """
    if not encoders:
        raise InvalidArgument("no model variant to embed the catalog with")
    params = next(iter(encoders.values())).params
    items: list[CatalogItem] = []
    chunks: Chunks = defaultdict(list)
    with (
        ThreadPoolExecutor(threads) as pool,
        progress(total=len(catalog), desc="embed", unit="img") as bar,
    ):
        for start in range(0, len(catalog), BATCH):
            batch = catalog.items[start : start + BATCH]
            images = list(pool.map(lambda item: _decode(catalog, params, item), batch))
            kept = [image for image in images if image is not None]
            items += [item for item, image in zip(batch, images, strict=True) if image is not None]
            if kept:
                _add(chunks, np.stack(kept), params, encoders)
            bar.update(len(batch))
    if not items:
        raise InvalidArgument(f"no image of catalog {catalog.root} decodes")
    joined = {key: np.concatenate(batches) for key, batches in chunks.items()}
    pixel_mean = joined["pix", ""].mean(axis=0)
    return Features(
        items=items,
        model={variant: joined["model", variant] for variant in encoders},
        probs={variant: joined["probs", variant] for variant in encoders},
        colour_histogram=joined["hist", ""],
        raw_pixels=baselines.centred(joined["pix", ""], pixel_mean),
        pixel_mean=pixel_mean,
        undecodable=len(catalog) - len(items),
    )


def embed_images(
    images: np.ndarray, features: Features, encoders: dict[str, Encoder]
) -> dict[str, np.ndarray]:
    """Decoded images that are not catalog items (changed photos, say) in every embedding of
    `features`, by the same names as `Features.embeddings`: searchable against it.

    Args:
        images: uint8 (N, H, W, 3), decoded with the encoders' preprocessing.
        features: the catalog's embeddings (the raw pixels are centred on its mean).
        encoders: the variants that embedded the catalog.
    """
    params = next(iter(encoders.values())).params
    chunks: Chunks = defaultdict(list)
    for start in range(0, len(images), BATCH):
        _add(chunks, images[start : start + BATCH], params, encoders)
    joined = {key: np.concatenate(batches) for key, batches in chunks.items()}
    models = {figure_name(variant): joined["model", variant] for variant in encoders}
    return models | {
        "colour_histogram": joined["hist", ""],
        "raw_pixels": baselines.centred(joined["pix", ""], features.pixel_mean),
    }


def _decode(catalog: Catalog, params: PreprocessParams, item: CatalogItem) -> np.ndarray | None:
    try:
        return decode(catalog.image_bytes(item.id), Limits(), params)
    except InvalidArgument:
        return None


def _add(
    chunks: Chunks, images: np.ndarray, params: PreprocessParams, encoders: dict[str, Encoder]
) -> None:
    inputs = normalise(images, params)
    for variant, encoder in encoders.items():
        embeddings, probs = encoder.embed(inputs)
        chunks["model", variant].append(embeddings)
        chunks["probs", variant].append(probs)
    chunks["hist", ""].append(baselines.colour_histogram(images))
    chunks["pix", ""].append(baselines.downscaled(images))
