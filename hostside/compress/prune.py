"""Network slimming for DS-CNN: L1 sparsity on BatchNorm γ, a global γ threshold, and *physical* removal
of channels — a smaller network with smaller tensors, never a mask.

Channel groups: group 0 is the stem conv's output and the first depthwise conv (a depthwise conv keeps
channel i as channel i); group i is the i-th pointwise conv's output and the depthwise conv after it; the
last group feeds the classifier. A channel is removed from every layer of its group at once, and from the
input of the layer that reads the group (the next pointwise conv, or the classifier). A channel's score is
the largest |γ| among its group's BatchNorms, so a channel goes only when all its γ are small.
"""
from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn

from ..errors import PqlrError
from ..models.dscnn import DSCNN


def _check(model) -> DSCNN:
    if not isinstance(model, DSCNN):
        raise PqlrError(f"channel pruning supports DS-CNN models, not {type(model).__name__}")
    if model.cfg.pw_ranks and any(model.cfg.pw_ranks) or model.cfg.fc_rank:
        raise PqlrError("prune before the low-rank stage: this model is already factorised")
    return model


def groups(model: DSCNN) -> list[list[nn.BatchNorm2d]]:
    """The BatchNorms of each channel group."""
    _check(model)
    mods = list(model.body)
    g = [[model.stem_bn]]
    for i in range(0, len(mods), 6):
        g[-1].append(mods[i + 1])          # the depthwise conv's BN belongs to the incoming group
        g.append([mods[i + 4]])            # the pointwise conv's BN starts the next group
    return g


def l1_penalty(model: DSCNN) -> torch.Tensor:
    return sum(bn.weight.abs().sum() for grp in groups(model) for bn in grp)


def channel_scores(model: DSCNN) -> list[torch.Tensor]:
    return [torch.stack([bn.weight.detach().abs() for bn in grp]).max(dim=0).values for grp in groups(model)]


def select_channels(model: DSCNN, sparsity: float, min_keep: int = 2,
                    max_group_sparsity: float = 1.0) -> list[torch.Tensor]:
    """Keep-indices per group: remove the `sparsity` fraction of all channels with the smallest scores
    (one global threshold), keeping at least min_keep per group and, with max_group_sparsity < 1, at least
    that share of each group (the global threshold alone can starve early layers)."""
    if not 0 <= sparsity < 1:
        raise PqlrError(f"sparsity {sparsity} must be in [0, 1)")
    if not 0 < max_group_sparsity <= 1:
        raise PqlrError(f"max_group_sparsity {max_group_sparsity} must be in (0, 1]")
    scores = channel_scores(model)
    flat = torch.cat(scores)
    n_remove = int(round(sparsity * len(flat)))
    threshold = flat.sort().values[n_remove - 1] if n_remove > 0 else -1.0
    keep = []
    for s in scores:
        idx = torch.nonzero(s > threshold).flatten()
        floor = max(min(min_keep, len(s)), int(math.ceil((1 - max_group_sparsity) * len(s))))
        if len(idx) < floor:
            idx = s.argsort(descending=True)[:floor].sort().values
        keep.append(idx)
    return keep


def masked_copy(model: DSCNN, keep: list[torch.Tensor]) -> DSCNN:
    """The original network with removed channels silenced (γ = β = 0 in every BN of their group):
    what physical pruning must reproduce exactly."""
    m = copy.deepcopy(model)
    for grp, k in zip(groups(m), keep):
        mask = torch.zeros(grp[0].num_features, dtype=torch.bool)
        mask[k] = True
        for bn in grp:
            bn.weight.data[~mask] = 0
            bn.bias.data[~mask] = 0
    return m


def _take_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, idx: torch.Tensor) -> None:
    for name in ("weight", "bias"):
        getattr(dst, name).data.copy_(getattr(src, name).data[idx])
    for name in ("running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[idx])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


@torch.no_grad()
def prune(model: DSCNN, keep: list[torch.Tensor]) -> DSCNN:
    """A new, smaller DS-CNN with only the kept channels."""
    _check(model)
    widths = tuple(len(k) for k in keep)
    new = DSCNN(dataclasses.replace(model.cfg, widths=widths)).eval()
    new.stem.weight.copy_(model.stem.weight[keep[0]])
    _take_bn(new.stem_bn, model.stem_bn, keep[0])
    old, mods = list(model.body), list(new.body)
    for b in range(model.cfg.blocks):
        i = 6 * b
        k_in, k_out = keep[b], keep[b + 1]
        mods[i].weight.copy_(old[i].weight[k_in])                       # depthwise: channel i stays i
        _take_bn(mods[i + 1], old[i + 1], k_in)
        mods[i + 3].weight.copy_(old[i + 3].weight[k_out][:, k_in])     # pointwise: rows out, columns in
        _take_bn(mods[i + 4], old[i + 4], k_out)
    new.fc.weight.copy_(model.fc.weight[:, keep[-1]])
    new.fc.bias.copy_(model.fc.bias)
    return new
