"""The instance term: small when each photo's copy is its nearest, large when they are apart."""

import torch
import torch.nn.functional as F

from encoder_svc.model import Parts
from encoder_svc.train import Recipe, instance_term


def test_the_instance_term_rewards_copies_that_find_their_photo() -> None:
    torch.manual_seed(0)
    photos = F.normalize(torch.randn(8, 16), dim=1)
    others = torch.cat([torch.randn(4, 16), torch.randn(4, 16)])
    matched = Parts(torch.cat([photos, photos[:4]]), None)
    unmatched = Parts(torch.cat([photos, F.normalize(others[:4], dim=1)]), None)
    recipe = Recipe(instance_pairs=4)

    assert instance_term(matched, 4, recipe) < 0.05
    assert instance_term(unmatched, 4, recipe) > 1.0
