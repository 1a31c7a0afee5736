"""The 3D U-Net of the seed paper (Lee et al. 2021): three encoders, three decoders.

Each level is two 3x3x3 convolutions, each followed by GroupNorm and ReLU. The first
down-sampling is 1x2x2 max-pooling (CT slices are often thicker than pixels are wide), the
next two 2x2x2; decoders up-sample trilinearly and concatenate the encoder's features. A 1x1x1
convolution gives one logit per class; softmax and cross-entropy are applied outside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from habitus.labels import NUM_LABELS

ARCHITECTURE = "3D U-Net, 3 encoders / 3 decoders, GroupNorm, trilinear up-sampling"
"""The network of this module as manifests name it (``training.architecture``)."""

POOLING: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (2, 2, 2), (2, 2, 2))
"""Down-sampling factors (depth, height, width) after each encoder, in order."""


def patch_multiple() -> tuple[int, int, int]:
    """What patch sizes must be multiples of: the product of the pooling factors per axis."""
    d = h = w = 1
    for pd, ph, pw in POOLING:
        d, h, w = d * pd, h * ph, w * pw
    return d, h, w


@dataclass(frozen=True)
class NetworkConfig:
    width: int = 8  # channels of the first level; doubled at each level below
    num_classes: int = NUM_LABELS
    groups: int = 4  # GroupNorm groups (capped by the channel count)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ConvBlock(nn.Sequential):
    """(3x3x3 convolution, GroupNorm, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        g = next(n for n in range(min(groups, out_channels), 0, -1) if out_channels % n == 0)
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(g, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(g, out_channels),
            nn.ReLU(inplace=True),
        )


class UNet3D(nn.Module):
    """Input (B, 1, D, H, W) normalised HU; output (B, num_classes, D, H, W) logits.

    D must be a multiple of 4 and H, W of 8 (see :func:`patch_multiple`).
    """

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        w, g = self.config.width, self.config.groups
        widths = [w, 2 * w, 4 * w]
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        in_ch = 1
        for ch, factor in zip(widths, POOLING, strict=True):
            self.encoders.append(ConvBlock(in_ch, ch, g))
            self.pools.append(nn.MaxPool3d(kernel_size=factor, stride=factor))
            in_ch = ch
        self.bottleneck = ConvBlock(in_ch, 8 * w, g)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        in_ch = 8 * w
        for ch, factor in zip(reversed(widths), reversed(POOLING), strict=True):
            self.ups.append(
                nn.Upsample(scale_factor=tuple(float(f) for f in factor), mode="trilinear")
            )
            self.decoders.append(ConvBlock(in_ch + ch, ch, g))
            in_ch = ch
        self.head = nn.Conv3d(w, self.config.num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder, pool in zip(self.encoders, self.pools, strict=True):
            x = encoder(x)
            skips.append(x)
            x = pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            x = decoder(torch.cat([up(x), skip], dim=1))
        logits: torch.Tensor = self.head(x)
        return logits


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
