"""Low-rank factorisation: a weight W (out × in) becomes B·A with A = √Σ_r·V_rᵀ (r × in) and
B = U_r·√Σ_r (out × r) from its SVD; ‖W − B·A‖²_F = Σ_{i>r} σ_i². For a DS-CNN, the pointwise convs
and the classifier are candidates; a layer is factorised only where r·(in + out) < in·out."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import PqlrError
from ..models.dscnn import DSCNN


def svd_factor(w: torch.Tensor, rank: int | None = None, energy: float | None = None):
    """(B, A, rank) with W ≈ B @ A; the rank fixed, or the smallest keeping `energy` of Σσ²."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    if rank is None:
        if energy is None or not 0 < energy <= 1:
            raise PqlrError("low-rank needs a rank, or an energy in (0, 1]")
        cum = torch.cumsum(s ** 2, 0) / (s ** 2).sum()
        rank = int(torch.searchsorted(cum, torch.tensor(energy, dtype=cum.dtype)).item()) + 1
    rank = min(rank, len(s))
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(w.dtype), (root[:, None] * vh[:rank]).to(w.dtype), rank


def candidates(model: DSCNN) -> dict[str, tuple[int, int]]:
    """name → (out, in) of each factorisable layer."""
    w = model.cfg.group_widths()
    c = {f"pw{i}": (w[i + 1], w[i]) for i in range(model.cfg.blocks)}
    c["fc"] = (model.cfg.n_classes, w[-1])
    return c


def plan_ranks(model: DSCNN, rank: int | None, energy: float | None, layers: list[str] | None) -> dict[str, dict]:
    """Which layers get which rank. Named layers must exist and the rank must fit them; with no names,
    every layer where the factorisation saves parameters."""
    if not isinstance(model, DSCNN):
        raise PqlrError(f"low-rank supports DS-CNN models, not {type(model).__name__}")
    cands = candidates(model)
    if layers:
        unknown = [n for n in layers if n not in cands]
        if unknown:
            raise PqlrError(f"lowrank.layers: unknown layer(s) {unknown}; this model has {sorted(cands)}")
    decisions = {}
    mods = list(model.body)
    for name, (o, i) in cands.items():
        if layers and name not in layers:
            continue
        w = (mods[6 * int(name[2:]) + 3].weight[:, :, 0, 0] if name != "fc" else model.fc.weight).detach()
        r = rank
        if r is None:
            r = svd_factor(w, None, energy)[2]
        if r > min(o, i):
            if layers:
                raise PqlrError(f"lowrank.rank {r} is larger than layer {name} ({o}×{i}) allows (≤ {min(o, i)})")
            decisions[name] = {"rank": r, "applied": False, "reason": f"rank {r} > min({o}, {i})"}
            continue
        if r * (o + i) >= o * i:
            decisions[name] = {"rank": r, "applied": False, "reason": f"rank {r} saves nothing on {o}×{i}"}
            continue
        decisions[name] = {"rank": r, "applied": True, "params_before": o * i, "params_after": r * (o + i)}
    return decisions


@torch.no_grad()
def factorise(model: DSCNN, decisions: dict[str, dict]) -> DSCNN:
    applied = {k: v["rank"] for k, v in decisions.items() if v["applied"]}
    ranks = tuple(applied.get(f"pw{i}", 0) for i in range(model.cfg.blocks))
    cfg = dataclasses.replace(model.cfg, pw_ranks=ranks if any(ranks) else None, fc_rank=applied.get("fc", 0))
    new = DSCNN(cfg).eval()
    old, mods = list(model.body), list(new.body)
    new.stem.load_state_dict(model.stem.state_dict())
    new.stem_bn.load_state_dict(model.stem_bn.state_dict())
    for b in range(model.cfg.blocks):
        i = 6 * b
        mods[i].load_state_dict(old[i].state_dict())
        mods[i + 1].load_state_dict(old[i + 1].state_dict())
        mods[i + 4].load_state_dict(old[i + 4].state_dict())
        w = old[i + 3].weight
        if ranks[b]:
            B, A, _ = svd_factor(w[:, :, 0, 0], ranks[b])
            mods[i + 3][0].weight.copy_(A[:, :, None, None])
            mods[i + 3][1].weight.copy_(B[:, :, None, None])
        else:
            mods[i + 3].weight.copy_(w)
    if cfg.fc_rank:
        B, A, _ = svd_factor(model.fc.weight, cfg.fc_rank)
        new.fc[0].weight.copy_(A)
        new.fc[1].weight.copy_(B)
        new.fc[1].bias.copy_(model.fc.bias)
    else:
        new.fc.load_state_dict(model.fc.state_dict())
    return new


def expected_error(w: torch.Tensor, rank: int) -> float:
    s = np.linalg.svd(w.detach().double().numpy(), compute_uv=False)
    return float(np.sqrt((s[rank:] ** 2).sum()))
