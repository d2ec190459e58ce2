"""The exported weights: an exponential moving average of the trained ones."""

import copy

import torch

from encoder_svc.model import ResNet


class WeightAverage:
    """An exponential moving average of the weights and batch-norm statistics.

    The decay ramps up over the first steps (as timm's ModelEmaV3 does), so a short training
    is not averaged with its random start.
    """

    def __init__(self, model: ResNet, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0

    def update(self, model: ResNet) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            pairs = zip(self.model.state_dict().values(), model.state_dict().values(), strict=True)
            for average, current in pairs:
                if average.dtype.is_floating_point:
                    average.lerp_(current, 1 - decay)
                else:
                    average.copy_(current)
