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
    # channel count per group after pruning: group 0 is the stem (and the first depthwise conv), group i
    # the i-th pointwise conv (and the depthwise conv after it). None: `channels` everywhere.
    widths: tuple[int, ...] | None = None
    # rank of each pointwise conv's low-rank factorisation (0: not factorised); None: none factorised
    pw_ranks: tuple[int, ...] | None = None
    fc_rank: int = 0                          # rank of the classifier's factorisation (0: not factorised)
    activation: str = "relu"                  # relu, or relu6 (a clamp at 6 as well: MobileNet-style)
    # streamable along time: the stem spans all features (stem_kernel[0] frames × F), stride 1, and every conv
    # is unpadded in time (depthwise 3×1), so `pqlr export --streaming` can run it one frame per step
    temporal: bool = False
    # each input band minus its mean over the window's frames (per-window cepstral/channel mean normalisation),
    # "none" or "band_mean"; fp32 only for now (export refuses it): benchmarks/quality/attempts.md §28
    input_norm: str = "none"

    def group_widths(self) -> tuple[int, ...]:
        return tuple(self.widths) if self.widths is not None else (self.channels,) * (self.blocks + 1)

    def to_dict(self) -> dict:
        return asdict(self)


class DSCNN(nn.Module):
    kind = "dscnn"

    def __init__(self, cfg: DSCNNConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.group_widths()
        if cfg.activation not in ("relu", "relu6"):
            raise ValueError(f"activation {cfg.activation!r}: relu or relu6")
        if cfg.input_norm not in ("none", "band_mean"):
            raise ValueError(f"input_norm {cfg.input_norm!r}: none or band_mean")
        act = nn.ReLU6 if cfg.activation == "relu6" else nn.ReLU
        if len(w) != cfg.blocks + 1:
            raise ValueError(f"widths {w} must have blocks+1 = {cfg.blocks + 1} entries")
        ranks = tuple(cfg.pw_ranks) if cfg.pw_ranks is not None else (0,) * cfg.blocks
        kh, kw = cfg.stem_kernel
        if cfg.temporal:
            kw = cfg.input_shape[1]
            if cfg.input_shape[0] - kh + 1 - 2 * cfg.blocks < 1:
                raise ValueError(f"{cfg.input_shape[0]} frames are too few for a {kh}-frame stem and {cfg.blocks} "
                                 f"unpadded 3-frame depthwise convs")
            self.stem_pad = (0, 0, 0, 0)
            self.stem = nn.Conv2d(1, w[0], (kh, kw), stride=1, bias=False)
        else:
            # TF-style "same" padding: total k−1, the floor on top/left
            self.stem_pad = ((kw - 1) // 2, (kw - 1) - (kw - 1) // 2, (kh - 1) // 2, (kh - 1) - (kh - 1) // 2)
            self.stem = nn.Conv2d(1, w[0], cfg.stem_kernel, stride=cfg.stem_stride, bias=False)
        self.stem_bn = nn.BatchNorm2d(w[0])
        layers = []
        for i in range(cfg.blocks):
            pw = (nn.Conv2d(w[i], w[i + 1], 1, bias=False) if not ranks[i] else
                  nn.Sequential(nn.Conv2d(w[i], ranks[i], 1, bias=False), nn.Conv2d(ranks[i], w[i + 1], 1, bias=False)))
            dw = (nn.Conv2d(w[i], w[i], (3, 1), padding=0, groups=w[i], bias=False) if cfg.temporal else
                  nn.Conv2d(w[i], w[i], 3, padding=1, groups=w[i], bias=False))
            layers += [dw, nn.BatchNorm2d(w[i]), act(),
                       pw, nn.BatchNorm2d(w[i + 1]), act()]
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = (nn.Linear(w[-1], cfg.n_classes) if not cfg.fc_rank else
                   nn.Sequential(nn.Linear(w[-1], cfg.fc_rank, bias=False), nn.Linear(cfg.fc_rank, cfg.n_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional maps before pooling: [N, T, F] features → [N, C, T', F'] (training's auxiliary phoneme
        loss reads them along time, hostside/train.py)."""
        if self.cfg.input_norm == "band_mean":
            x = x - x.mean(dim=1, keepdim=True)
        x = nn.functional.pad(x.unsqueeze(1), self.stem_pad)       # [N, 1, T, F]
        x = self.stem_bn(self.stem(x))
        x = nn.functional.relu6(x) if self.cfg.activation == "relu6" else torch.relu(x)
        return self.body(x)

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the classifier: trunk maps → class logits."""
        return self.fc(self.drop(maps.mean(dim=(2, 3))))
