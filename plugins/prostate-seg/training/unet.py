"""The segmentation network every stage trains: a small 2D U-Net (2.5D input: a slice and its neighbours as
channels), two output channels (background, prostate) as logits."""
import os

import torch
import torch.nn as nn


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, channels=3, classes=2, base=16, depth=4):
        super().__init__()
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([block(channels, widths[0])] + [block(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))])
        self.merge = nn.ModuleList([block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.pool = nn.MaxPool2d(2)

    def encode(self, x):
        skips = []
        for i, down in enumerate(self.down):
            x = down(x if i == 0 else self.pool(x))
            skips.append(x)
        return skips

    def forward(self, x):
        skips = self.encode(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def width_of(state):
    """The `base` width of the U-Net whose weights `state` holds (its first convolution's filters)."""
    return state["down.0.0.weight"].shape[0]


def context_of(network):
    """The 2.5D context of a U-Net (a network or its weights): how many neighbours on each side of a slice
    its input holds as channels ((channels - 1) / 2; 1 for every shipped network)."""
    state = network if isinstance(network, dict) else network.state_dict()
    return (state["down.0.0.weight"].shape[1] - 1) // 2


def shaped_like(state, classes=2):
    """An untrained U-Net with the width and input channels of the one whose weights `state` holds."""
    return UNet(channels=2 * context_of(state) + 1, classes=classes, base=width_of(state))


def load_trained(runs, stage):
    """The network a stage trained (runs/<stage>/model.pt), in evaluation mode, at the width and context it
    was trained at."""
    state = torch.load(os.path.join(runs, stage, "model.pt"))
    net = shaped_like(state)
    net.load_state_dict(state)
    return net.eval()
