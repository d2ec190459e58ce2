"""Training batches: each step's rows and their changed photos, made ahead of the step."""

from typing import Any

import numpy as np
import torch

from encoder_svc.augment import Augment, augmented
from encoder_svc.preprocess import PreprocessParams, normalise


class Batches(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Step i's batch: its rows and their changed, normalised images, then a second changed
    copy of the first `pairs` rows' images. Each step's changes are drawn from (seed, i), so a
    run is the same whatever the number of loader workers."""

    def __init__(
        self,
        images: np.ndarray,
        order: np.ndarray,
        augment: Augment,
        params: PreprocessParams,
        seed: int,
        pairs: int = 0,
    ) -> None:
        self.images, self.order, self.augment, self.params = images, order, augment, params
        self.seed, self.pairs = seed, pairs

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.order[step]
        rng = np.random.default_rng((self.seed, step))
        seen = np.concatenate([rows, rows[: self.pairs]])
        changed = augmented(self.images[seen], self.augment, self.params, rng)
        return torch.from_numpy(rows), torch.from_numpy(normalise(changed, self.params))


def loader(batches: Batches, workers: int) -> torch.utils.data.DataLoader[Any]:
    """The batches in order, made by `workers` processes ahead of the training step (0: in
    the training process itself)."""
    return torch.utils.data.DataLoader(
        batches, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None
    )
