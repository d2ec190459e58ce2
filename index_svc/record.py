"""A vector as the shard stores it: item id, partition, leaf, model version and the floats."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Record:
    item_id: str
    partition: str  # id of the partition's taxonomy node
    leaf: str  # taxonomy path of the item's leaf
    vector: np.ndarray  # float32, one dimension
    model_version: str
