"""The network's pieces whose exported form differs from the obvious torch call."""

import pytest
import torch
import torch.nn.functional as F

from encoder_svc.model import _bilinear


@pytest.mark.parametrize(
    ("source", "size"), [((10, 8), (20, 15)), ((5, 4), (20, 15)), ((3, 3), (3, 3))]
)
def test_the_upsampling_matrix_is_bilinear_interpolation(
    source: tuple[int, int], size: tuple[int, int]
) -> None:
    maps = torch.randn(2, 4, *source, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    got = torch.flatten(maps, 2) @ _bilinear(torch.Size(source), size, maps.device)
    assert torch.allclose(got.reshape(expected.shape), expected, atol=1e-6)
