"""Trains the encoder on the taxonomy's leaves; evaluates, exports, quantises and registers it.

    python -m encoder_svc.train --catalog DIR --taxonomy EXPORT.json --models-dir DIR \\
        [--recipe default|daily] [--epochs N] [--seed S] [--batch-size B] [--lr LR] \\
        [--min-items M] [--threads T] [--instance-loss W] [--precision auto|bf16|fp32] \\
        [--gate-margin X] [--force]

The new version becomes CURRENT only if it passes the quality gate (registry.judge).
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, cast

# Before torch loads OpenMP: spinning workers make training 10x slower when other processes
# share the cores (measured: 1.5 s a step instead of 0.13 s on 2 busy cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from catalog.items import open_catalog
from common.progress import progress
from encoder_svc import dataset, evaluate, export, precision, quantize, registry
from encoder_svc.augment import Augment
from encoder_svc.average import WeightAverage
from encoder_svc.batches import Batches, loader
from encoder_svc.dataset import Dataset, Labels
from encoder_svc.model import Arch, CosineHead, Parts, ResNet
from encoder_svc.preprocess import PreprocessParams, normalise

EMBED_BATCH = 512


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train. The defaults train fashion-small (44k photos) in 27 minutes on 2 cores
    with bfloat16: held-out top-1 0.855, P@10 leaf 0.815, leaf+colour 0.482 on the catalog's
    photos; on shoppers' (python -m evaluation) own item in the top 10 0.868, P@10 leaf 0.805,
    leaf+colour 0.504. Without the instance term, 23 epochs gave 0.856 / 0.822 / 0.486 and
    0.807 / 0.805 / 0.501; without trim and augmentations, 0.871 / 0.841 / 0.502 (the issue's
    0.843 / 0.505). The generated catalog trains in about a minute."""

    epochs: int = 18
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    margin: float = 0.1  # CosFace margin of every cosine head
    level_loss: float = 0.3  # weight of each ancestor level's loss, the leaf's being 1
    colour_loss: float = 1.0  # weight of the colour head's loss
    ema_decay: float = 0.999  # the exported weights are this moving average of the trained ones
    trim: bool = True  # cut the product out of a plain background (preprocess.trimmed)
    augment: Augment = dataclasses.field(default_factory=Augment)
    loader_workers: int = 1  # processes changing the next batches while a step trains
    # The instance term: the first `instance_pairs` items of each batch are seen a second time,
    # changed otherwise, and InfoNCE pulls each photo's two embeddings together (0: off).
    instance_loss: float = 0.5
    instance_pairs: int = 16
    instance_temperature: float = 0.1
    min_items: int = 10  # training items a class (leaf, ancestor, colour) needs
    seed: int = 0
    threads: int = 2
    # bf16 (autocast), fp32, or auto (precision.resolve); meta.json records the one used.
    precision: str = "auto"
    arch: Arch = dataclasses.field(default_factory=Arch)


# daily: the default for twice as many epochs, for the daily job: 54 minutes on 2 cores for
# fashion-small, held-out top-1 0.868, P@10 leaf 0.840, leaf+colour 0.501.
RECIPES = {"default": Recipe(), "daily": Recipe(epochs=36)}
OPTIONS = (
    "epochs",
    "seed",
    "batch_size",
    "lr",
    "min_items",
    "threads",
    "instance_loss",
    "precision",
)


class Targets(NamedTuple):
    """A batch's class indexes at every head, -1 where an item has none."""

    leaf: torch.Tensor
    level: torch.Tensor
    colour: torch.Tensor


def train(
    catalog_dir: Path,
    taxonomy_file: Path,
    models_dir: Path,
    recipe: Recipe = Recipe(),
    gate_margin: float = registry.GATE_MARGIN,
    force: bool = False,
) -> tuple[Path, registry.Verdict]:
    """Trains, evaluates on the held-out items, exports to ONNX, quantises to int8, registers
    and gates a version.

    Args:
        catalog_dir: the catalog (images, colours).
        taxonomy_file: the taxonomy service's export (leaves, the tree above them).
        models_dir: where versions are registered.
        recipe: the training settings.
        gate_margin: how much worse than CURRENT a gated figure may be for promotion.
        force: make the new version CURRENT whatever its figures.

    Returns:
        The new version's directory and the gate's verdict (CURRENT moved if it promotes).
    """
    started = time.monotonic()
    recipe = dataclasses.replace(recipe, precision=precision.resolve(recipe.precision))
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    taxonomy = dataset.read_export(taxonomy_file)
    with open_catalog(catalog_dir) as catalog:
        data = dataset.load(catalog, taxonomy, PreprocessParams(trim=recipe.trim), recipe.threads)
    labels = dataset.label(data, taxonomy, recipe.min_items)
    chosen = dataset.trainable(data)
    params = dataset.channel_stats(data.images[chosen], PreprocessParams(trim=recipe.trim))
    seconds = {"decode": time.monotonic() - started}
    model, loss = fit(data.images[chosen], _rows(labels, chosen), labels, params, recipe)
    seconds["train"] = time.monotonic() - started - sum(seconds.values())
    figures = evaluate_model(model, data, labels, params)
    seconds["evaluate"] = time.monotonic() - started - sum(seconds.values())
    seen = {
        "catalog": str(catalog_dir.resolve()),
        "taxonomy": str(taxonomy_file.resolve()),
        "taxonomy_version": taxonomy.version,
        **dataset.seen(data, labels, chosen, recipe.min_items),
    }
    summary: dict[str, Any] = {
        "recipe": _as_json(recipe),
        "heads": {"levels": labels.levels, "colours": labels.colours},
        "final_loss": loss,
        "seconds": seconds,
    }
    version_dir = _register(models_dir, model, labels, params, summary, figures, seen, started)
    # Before promotion: a server configured for int8 switches to the version only once it has one.
    quantize.quantize(version_dir, catalog_dir, threads=recipe.threads)
    return version_dir, registry.promote(models_dir, version_dir, gate_margin, force)


def _register(
    models_dir: Path,
    model: ResNet,
    labels: Labels,
    params: PreprocessParams,
    summary: dict[str, Any],
    figures: dict[str, Any],
    seen: dict[str, Any],
    started: float,
) -> Path:
    """Exports the model (ONNX, checked against torch) and registers it with its weights."""
    with tempfile.TemporaryDirectory() as scratch:
        onnx_file = Path(scratch) / registry.MODEL_FILE
        weights = Path(scratch) / export.WEIGHTS_FILE
        summary["export_max_abs_diff"] = export.export(model, onnx_file, params)
        torch.save(model.state_dict(), weights)
        summary["seconds"]["total"] = time.monotonic() - started
        summary["seconds"] = {key: round(value, 1) for key, value in summary["seconds"].items()}
        return registry.register(
            models_dir,
            onnx_file,
            labels.leaves,
            model.dim,
            params,
            summary,
            make_current=False,
            evaluation=figures,
            data=seen,
            files=(weights,),
        )


def _rows(labels: Labels, rows: np.ndarray) -> Targets:
    return Targets(
        torch.from_numpy(labels.leaf[rows]),
        torch.from_numpy(labels.level[rows]),
        torch.from_numpy(labels.colour[rows]),
    )


def fit(
    images: np.ndarray, targets: Targets, labels: Labels, params: PreprocessParams, recipe: Recipe
) -> tuple[ResNet, float]:
    """The training loop: AdamW, one-cycle schedule, the heads' losses, a moving average.

    Args:
        images: the training images, uint8 (N, H, W, 3).
        targets: their classes at every head.
        labels: the heads' classes.
        params: the normalisation.
        recipe: the settings.

    Returns:
        The moving average of the weights, in eval mode, and the loss of the last step.
    """
    model = ResNet(
        len(labels.leaves),
        recipe.arch,
        levels=tuple(len(classes) for classes in labels.levels),
        colours=len(labels.colours),
    ).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # 20% faster on CPU
    batch = min(recipe.batch_size, len(images))
    steps = max(len(images) // batch, 1)  # whole batches only: batch norm dislikes tiny ones
    rng = np.random.default_rng(recipe.seed)
    order = np.concatenate(
        [rng.permutation(len(images))[: steps * batch].reshape(steps, batch)
         for _ in range(recipe.epochs)]
    )  # fmt: skip
    optimizer = _optimizer(model, recipe)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=len(order), pct_start=0.2
    )
    average = WeightAverage(model, recipe.ema_decay)
    arithmetic = precision.resolve(recipe.precision)
    model.train()
    loss = torch.zeros(())
    pairs = min(recipe.instance_pairs, batch) if recipe.instance_loss else 0
    made = Batches(images, order, recipe.augment, params, recipe.seed, pairs)
    batches = loader(made, recipe.loader_workers)
    with progress(total=len(order), desc="train", unit="step") as bar:
        for step, (rows, x) in enumerate(batches):
            epoch = step // steps
            x = x.contiguous(memory_format=torch.channels_last)
            with precision.autocast(arithmetic):
                parts = precision.as_float(model.forward_features(x))
            seen = torch.cat([rows, rows[:pairs]])
            loss = _loss(model, parts, _pick(targets, seen), recipe)
            if pairs:
                loss = loss + recipe.instance_loss * instance_term(parts, pairs, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            average.update(model)
            bar.set_postfix(epoch=f"{epoch + 1}/{recipe.epochs}", loss=f"{loss.item():.3f}")
            bar.update()
    return average.model, round(float(loss.item()), 4)


def _pick(targets: Targets, rows: torch.Tensor) -> Targets:
    return Targets(*(tensor[rows] for tensor in targets))


def _loss(model: ResNet, parts: Parts, targets: Targets, recipe: Recipe) -> torch.Tensor:
    """The leaf loss, plus the weighted losses of the ancestor levels and of colour."""
    loss = _head_loss(model.head, parts.shape, targets.leaf, recipe)
    for level, head in enumerate(model.level_heads):
        term = _head_loss(cast(CosineHead, head), parts.shape, targets.level[:, level], recipe)
        loss = loss + recipe.level_loss * term
    if model.colour_head is not None and parts.colour is not None:
        term = _head_loss(model.colour_head, parts.colour, targets.colour, recipe)
        loss = loss + recipe.colour_loss * term
    return loss


def instance_term(parts: Parts, pairs: int, recipe: Recipe) -> torch.Tensor:
    """InfoNCE between the first `pairs` photos and their changed copies (the batch's last
    `pairs` rows), both ways: each photo's copy must be nearer it than the other copies are."""
    joined = parts.shape if parts.colour is None else torch.cat([parts.shape, parts.colour], 1)
    joined = F.normalize(joined, dim=1)
    first, second = joined[:pairs], joined[-pairs:]
    logits = first @ second.t() / recipe.instance_temperature
    same = torch.arange(pairs)
    return (F.cross_entropy(logits, same) + F.cross_entropy(logits.t(), same)) / 2


def _head_loss(
    head: CosineHead, embedding: torch.Tensor, target: torch.Tensor, recipe: Recipe
) -> torch.Tensor:
    """Cross-entropy with margin over the items that have a class at this head."""
    known = target >= 0
    if not bool(known.any()):
        return embedding.sum() * 0.0
    logits = head(embedding[known], target[known], recipe.margin)
    return F.cross_entropy(logits, target[known], label_smoothing=recipe.label_smoothing)


def _optimizer(model: ResNet, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW, with no weight decay on biases, batch-norm scales and the heads' proxies."""
    proxies = {id(p) for m in model.modules() if isinstance(m, CosineHead) for p in m.parameters()}
    decay = [p for p in model.parameters() if p.ndim > 1 and id(p) not in proxies]
    no_decay = [p for p in model.parameters() if p.ndim <= 1 or id(p) in proxies]
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr)


def embed(
    model: ResNet, images: np.ndarray, params: PreprocessParams
) -> tuple[np.ndarray, np.ndarray]:
    """Runs decoded images (uint8 N x H x W x 3) through the model in eval mode.

    Returns:
        (embeddings (N, dim), leaf probabilities (N, leaves)), float32.
    """
    model.eval()
    embeddings, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(images), EMBED_BATCH):
            x = torch.from_numpy(normalise(images[start : start + EMBED_BATCH], params))
            embedding, prob = model(x)
            embeddings.append(embedding.numpy())
            probs.append(prob.numpy())
    return np.concatenate(embeddings), np.concatenate(probs)


def evaluate_model(
    model: ResNet, data: Dataset, labels: Labels, params: PreprocessParams
) -> dict[str, Any]:
    """Held-out figures: top-1 leaf accuracy, and P@10 (leaf; leaf and colour) of held-out
    queries searched exactly against the whole catalog, each query left out of its answer."""
    embeddings, probs = embed(model, data.images, params)
    scored = data.held_out & (labels.leaf >= 0)
    _, leaf_ids = np.unique(np.array(data.leaves), return_inverse=True)
    _, colour_ids = np.unique(np.array(data.colours), return_inverse=True)
    leaf_colour = leaf_ids * (colour_ids.max(initial=0) + 1) + colour_ids
    queries = np.flatnonzero(data.held_out)
    return {
        "held_out_top1_leaf": round(evaluate.top1_accuracy(probs[scored], labels.leaf[scored]), 4),
        "top1_queries": int(scored.sum()),
        "p_at_10_leaf": round(evaluate.precision_at_k(embeddings, leaf_ids, queries, 10), 4),
        "p_at_10_leaf_colour": round(
            evaluate.precision_at_k(embeddings, leaf_colour, queries, 10), 4
        ),
        "p_at_10_queries": len(queries),
        "searched": len(embeddings),
    }


def _as_json(recipe: Recipe) -> dict[str, Any]:
    raw = dataclasses.asdict(recipe)
    raw["arch"] = recipe.arch.to_dict()
    raw["augment"] = recipe.augment.to_dict()
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog folder")
    parser.add_argument("--taxonomy", type=Path, required=True, help="taxonomy export JSON")
    parser.add_argument("--models-dir", type=Path, required=True, help="model versions folder")
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="default",
        help="the settings: default (under 30 minutes on 2 cores for fashion-small) or daily "
        "(longer, for the daily job); the options below change single settings",
    )
    parser.add_argument("--epochs", type=int, help="default: the recipe's, as for every option")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument(
        "--min-items", type=int, help="training items a leaf (or colour, or ancestor) needs"
    )
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument(
        "--instance-loss",
        type=float,
        help="weight of the term pulling a photo and its changed copy together (0: off)",
    )
    parser.add_argument(
        "--precision",
        choices=precision.PRECISIONS,
        help="training arithmetic; auto: bf16 on a CPU with AMX or AVX512-BF16, else fp32",
    )
    parser.add_argument(
        "--gate-margin",
        type=float,
        default=registry.GATE_MARGIN,
        help="how much worse than CURRENT a gated figure may be for the new version to replace it",
    )
    parser.add_argument("--force", action="store_true", help="make the new version CURRENT anyway")
    args = parser.parse_args()
    chosen = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    recipe = dataclasses.replace(RECIPES[args.recipe], **chosen)
    version_dir, verdict = train(
        args.catalog, args.taxonomy, args.models_dir, recipe, args.gate_margin, args.force
    )
    _print_summary(version_dir, verdict)


def _print_summary(version_dir: Path, verdict: registry.Verdict) -> None:
    meta = registry.ModelMeta.load(version_dir)
    figures, items = meta.evaluation, meta.data["items"]
    small = meta.data["small_leaves"]["leaves"]
    print(
        f"model {meta.version}: {len(meta.leaves)} leaves, {items['trained']} items trained, "
        f"{items['in_small_leaves']} of them in {len(small)} leaves too small to predict"
    )
    print(
        f"held-out top-1 leaf {figures['held_out_top1_leaf']:.3f} ({figures['top1_queries']} "
        f"queries); P@10 leaf {figures['p_at_10_leaf']:.3f}, leaf and colour "
        f"{figures['p_at_10_leaf_colour']:.3f} ({figures['p_at_10_queries']} queries against "
        f"{figures['searched']})"
    )
    print(f"seconds {meta.training['seconds']}")
    print(quantize.describe(json.loads((version_dir / quantize.FACTS_FILE).read_text())))
    state = "promoted to CURRENT" if verdict.promote else "registered, NOT made CURRENT"
    print(f"{state}: {verdict.reason}")


if __name__ == "__main__":
    main()
