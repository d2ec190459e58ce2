"""A compact ResNet giving each image an L2-normalised embedding and leaf probabilities."""

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class Arch:
    """The network's shape, as data (recorded in the model's meta)."""

    widths: tuple[int, ...] = (32, 64, 128)
    blocks: tuple[int, ...] = (2, 2, 2)
    stem_width: int = 24
    dim: int = 128
    logit_scale: float = 16.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a shortcut (projected where the shape changes), then relu."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )
        # Each residual branch starts as the identity: steadier training from scratch.
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


class ResNet(nn.Module):
    """Stem, stages of BasicBlocks (each halving the resolution), global average pool, embedding.

    The classifier is a cosine classifier (normalised class weights times a fixed scale) on the
    L2-normalised embedding, so that classes separate by angle, which cosine search uses.
    """

    def __init__(self, num_leaves: int, arch: Arch = Arch()) -> None:
        super().__init__()
        self.arch = arch
        self.num_leaves = num_leaves
        self.stem = nn.Sequential(
            nn.Conv2d(3, arch.stem_width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(arch.stem_width),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(*_stages(arch.stem_width, arch.widths, arch.blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(arch.widths[-1], arch.dim)
        self.head = nn.Linear(arch.dim, num_leaves, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) -> L2-normalised embeddings (N, dim)."""
        x = self.stages(self.stem(x))
        x = self.embed(torch.flatten(self.pool(x), 1))
        return F.normalize(x, dim=1)

    def forward_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, dim) -> leaf logits (N, num_leaves)."""
        return self.arch.logit_scale * embedding @ F.normalize(self.head.weight, dim=1).t()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images -> (embedding, leaf probabilities): what is exported and served."""
        embedding = self.forward_features(x)
        return embedding, torch.softmax(self.forward_head(embedding), dim=1)


def _stages(in_chs: int, widths: tuple[int, ...], blocks: tuple[int, ...]) -> list[nn.Module]:
    stages: list[nn.Module] = []
    for width, count in zip(widths, blocks, strict=True):
        layers = [BasicBlock(in_chs, width, stride=2)]
        layers += [BasicBlock(width, width) for _ in range(count - 1)]
        stages.append(nn.Sequential(*layers))
        in_chs = width
    return stages
