"""DS-CNN: a conv stem, depthwise-separable blocks, global average pooling and a linear classifier.
BatchNorm follows every convolution (so channel pruning has γ to rank, and export folds it).
The MLPerf Tiny KWS reference is channels=64, blocks=4, stem 10×4 stride 2×2 on 49×10 MFCCs."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DSCNNConfig:
    input_shape: tuple[int, int] = (49, 40)   # (time frames, features)
    n_classes: int = 3
    channels: int = 32
    blocks: int = 2
    stem_kernel: tuple[int, int] = (10, 4)
    stem_stride: tuple[int, int] = (2, 2)
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class DSCNN(nn.Module):
    kind = "dscnn"

    def __init__(self, cfg: DSCNNConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        kh, kw = cfg.stem_kernel
        # TF-style "same" padding: total k−1, the floor on top/left
        self.stem_pad = ((kw - 1) // 2, (kw - 1) - (kw - 1) // 2, (kh - 1) // 2, (kh - 1) - (kh - 1) // 2)
        self.stem = nn.Conv2d(1, c, cfg.stem_kernel, stride=cfg.stem_stride, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        layers = []
        for _ in range(cfg.blocks):
            layers += [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c, cfg.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, T, F] → [N, 1, T, F]
        x = nn.functional.pad(x.unsqueeze(1), self.stem_pad)
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = self.body(x)
        x = x.mean(dim=(2, 3))
        return self.fc(self.drop(x))
