"""The discriminators' shared shape: strided convolutions with leaky ReLU, then a score map; the
hidden activations come back too, for the feature-matching loss."""

from torch import nn
import torch.nn.functional as F


class FeatureDiscriminator(nn.Module):
    def __init__(self, layers: list[nn.Module], out: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.out = out

    def forward(self, x):
        feats = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            feats.append(x)
        return self.out(x), feats
